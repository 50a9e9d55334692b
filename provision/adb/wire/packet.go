package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Command is a transport packet's command word: four ASCII letters read as a little-endian uint32.
type Command uint32

// Transport commands.
const (
	CmdSYNC Command = 0x434e5953 // "SYNC": obsolete USB resynchronisation
	CmdCNXN Command = 0x4e584e43 // "CNXN": connect, carries version, maxdata and the banner
	CmdAUTH Command = 0x48545541 // "AUTH": authentication token, signature or public key
	CmdOPEN Command = 0x4e45504f // "OPEN": open a stream to a service
	CmdOKAY Command = 0x59414b4f // "OKAY": stream opened, or a WRTE acknowledged
	CmdCLSE Command = 0x45534c43 // "CLSE": close a stream (or refuse an OPEN)
	CmdWRTE Command = 0x45545257 // "WRTE": stream data
	CmdSTLS Command = 0x534c5453 // "STLS": switch the transport to TLS
)

// String returns the command's four letters, or its hex value when it is not a known command.
func (c Command) String() string {
	if c.Known() {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(c))
		return string(b[:])
	}
	return fmt.Sprintf("0x%08x", uint32(c))
}

// Known reports whether c is one of the commands defined by the protocol.
func (c Command) Known() bool {
	switch c {
	case CmdSYNC, CmdCNXN, CmdAUTH, CmdOPEN, CmdOKAY, CmdCLSE, CmdWRTE, CmdSTLS:
		return true
	}
	return false
}

// Protocol versions and payload limits.
const (
	// VersionMin is the original protocol version: payload checksums are computed and checked.
	VersionMin uint32 = 0x01000000
	// VersionSkipChecksum is the first version where the checksum field is ignored (and sent as 0).
	VersionSkipChecksum uint32 = 0x01000001
	// Version is the newest version this package speaks.
	Version = VersionSkipChecksum

	// MaxPayloadV1 is the max payload of adbd before Android 7 (and what a peer must always accept
	// before CNXN has been exchanged).
	MaxPayloadV1 uint32 = 4 * 1024
	// MaxPayload is the max payload current adb and adbd announce (1 MiB).
	MaxPayload uint32 = 1024 * 1024

	// HeaderSize is the size in bytes of a packet header.
	HeaderSize = 24

	// STLSVersion is the version carried by an STLS packet.
	STLSVersion uint32 = 0x01000000
)

// AUTH packet types (arg0 of an AUTH packet).
const (
	AuthToken        uint32 = 1 // device -> host: 20 random bytes to sign
	AuthSignature    uint32 = 2 // host -> device: the token's signature
	AuthRSAPublicKey uint32 = 3 // host -> device: adbkey.pub text, NUL-terminated
)

// TokenSize is the size of an AUTH token.
const TokenSize = 20

// Errors reported by ReadPacket. They are wrapped with the offending values; test with errors.Is.
var (
	ErrBadMagic        = errors.New("bad packet magic")
	ErrPayloadTooLarge = errors.New("payload larger than the negotiated max")
	ErrBadChecksum     = errors.New("payload checksum mismatch")
	ErrTruncated       = errors.New("truncated packet")
)

// Packet is one transport message.
type Packet struct {
	Command Command
	Arg0    uint32
	Arg1    uint32
	Payload []byte
}

// String describes p for logs and errors, without dumping large payloads.
func (p Packet) String() string {
	const show = 48
	pl := p.Payload
	more := ""
	if len(pl) > show {
		pl, more = pl[:show], fmt.Sprintf("...(%d bytes)", len(p.Payload))
	}
	return fmt.Sprintf("%s(%d, %d, %q%s)", p.Command, p.Arg0, p.Arg1, pl, more)
}

// Checksum is the legacy payload checksum: the sum of the payload's bytes.
func Checksum(payload []byte) uint32 {
	var s uint32
	for _, b := range payload {
		s += uint32(b)
	}
	return s
}

// Header is a decoded packet header.
type Header struct {
	Command  Command
	Arg0     uint32
	Arg1     uint32
	Length   uint32
	Checksum uint32
	Magic    uint32
}

// ParseHeader decodes a 24-byte header and checks its magic. It does not look at the length.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("decoding packet header: %d of %d bytes: %w", len(b), HeaderSize, ErrTruncated)
	}
	h := Header{
		Command:  Command(binary.LittleEndian.Uint32(b[0:])),
		Arg0:     binary.LittleEndian.Uint32(b[4:]),
		Arg1:     binary.LittleEndian.Uint32(b[8:]),
		Length:   binary.LittleEndian.Uint32(b[12:]),
		Checksum: binary.LittleEndian.Uint32(b[16:]),
		Magic:    binary.LittleEndian.Uint32(b[20:]),
	}
	if h.Magic != ^uint32(h.Command) {
		return h, fmt.Errorf("decoding packet header: command %s has magic 0x%08x, want 0x%08x: %w",
			h.Command, h.Magic, ^uint32(h.Command), ErrBadMagic)
	}
	return h, nil
}

// AppendHeader appends the header of p, as sent under protocol version, to b.
func AppendHeader(b []byte, p Packet, version uint32) []byte {
	var sum uint32
	if version < VersionSkipChecksum {
		sum = Checksum(p.Payload)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Command))
	b = binary.LittleEndian.AppendUint32(b, p.Arg0)
	b = binary.LittleEndian.AppendUint32(b, p.Arg1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Payload)))
	b = binary.LittleEndian.AppendUint32(b, sum)
	b = binary.LittleEndian.AppendUint32(b, ^uint32(p.Command))
	return b
}

// Marshal returns p's bytes as sent under protocol version (the checksum is written only below
// VersionSkipChecksum, as adbd does).
func (p Packet) Marshal(version uint32) []byte {
	b := make([]byte, 0, HeaderSize+len(p.Payload))
	b = AppendHeader(b, p, version)
	return append(b, p.Payload...)
}

// WritePacket writes p to w in one Write call (so concurrent writers serialised by a mutex never
// interleave a header and a payload).
func WritePacket(w io.Writer, p Packet, version uint32) error {
	if _, err := w.Write(p.Marshal(version)); err != nil {
		return fmt.Errorf("writing %s packet: %w", p.Command, err)
	}
	return nil
}

// Reader reads packets from a transport, enforcing the negotiated limits. Set MaxPayload and Version
// once CNXN has been exchanged.
type Reader struct {
	r   io.Reader
	off int64
	hdr [HeaderSize]byte

	// MaxPayload is the largest payload accepted; a larger length is an error before anything is
	// allocated. NewReader sets it to MaxPayload, which any peer may send in its CNXN.
	MaxPayload uint32
	// Version is the negotiated protocol version; below VersionSkipChecksum non-zero payload
	// checksums are verified.
	Version uint32
}

// NewReader returns a Reader over r accepting payloads up to MaxPayload and verifying checksums
// (VersionMin) until told otherwise.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, MaxPayload: MaxPayload, Version: VersionMin}
}

// Offset returns the number of bytes consumed so far (for error messages).
func (r *Reader) Offset() int64 { return r.off }

// ReadPacket reads the next packet. A clean end of stream before a header starts returns io.EOF; a
// stream ending inside a packet returns an error wrapping ErrTruncated and io.ErrUnexpectedEOF.
func (r *Reader) ReadPacket() (Packet, error) {
	start := r.off
	n, err := io.ReadFull(r.r, r.hdr[:])
	r.off += int64(n)
	if err != nil {
		if err == io.EOF {
			return Packet{}, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Packet{}, fmt.Errorf("reading packet header at offset %d: got %d of %d bytes: %w: %w", start, n, HeaderSize, ErrTruncated, err)
		}
		return Packet{}, fmt.Errorf("reading packet header at offset %d: %w", start, err)
	}
	h, err := ParseHeader(r.hdr[:])
	if err != nil {
		return Packet{}, fmt.Errorf("at offset %d: %w", start, err)
	}
	if h.Length > r.MaxPayload {
		return Packet{}, fmt.Errorf("reading %s packet at offset %d: payload of %d bytes, max %d: %w", h.Command, start, h.Length, r.MaxPayload, ErrPayloadTooLarge)
	}
	p := Packet{Command: h.Command, Arg0: h.Arg0, Arg1: h.Arg1}
	if h.Length > 0 {
		p.Payload = make([]byte, h.Length)
		n, err := io.ReadFull(r.r, p.Payload)
		r.off += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return Packet{}, fmt.Errorf("reading %s payload at offset %d: got %d of %d bytes: %w: %w", h.Command, start+HeaderSize, n, h.Length, ErrTruncated, io.ErrUnexpectedEOF)
			}
			return Packet{}, fmt.Errorf("reading %s payload at offset %d: %w", h.Command, start+HeaderSize, err)
		}
	}
	// Below VersionSkipChecksum a non-zero checksum must match. A zero checksum is accepted: an adb
	// host reconnecting to a device it knew keeps its negotiated version and sends CNXN with 0.
	if r.Version < VersionSkipChecksum && h.Checksum != 0 {
		if sum := Checksum(p.Payload); sum != h.Checksum {
			return Packet{}, fmt.Errorf("reading %s packet at offset %d: checksum 0x%08x, payload sums to 0x%08x: %w", h.Command, start, h.Checksum, sum, ErrBadChecksum)
		}
	}
	return p, nil
}

// Negotiate returns the version and max payload a connection uses once both peers have announced
// theirs in CNXN: the lower of each.
func Negotiate(ourVersion, ourMax, peerVersion, peerMax uint32) (version, maxPayload uint32) {
	return min(ourVersion, peerVersion), min(ourMax, peerMax)
}
