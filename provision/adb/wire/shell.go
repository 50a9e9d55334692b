package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ShellID is the first byte of a shell v2 packet: which stream the data belongs to.
type ShellID byte

// Shell v2 packet ids (shell_protocol.h).
const (
	ShellStdin       ShellID = 0
	ShellStdout      ShellID = 1
	ShellStderr      ShellID = 2
	ShellExit        ShellID = 3 // one byte: the exit status
	ShellCloseStdin  ShellID = 4 // no data: close the subprocess's stdin
	ShellWindowSize  ShellID = 5 // ASCII "rowsxcols,xpixelsxypixels"
	ShellInvalid     ShellID = 255
	shellHeaderSize          = 5
	ShellMaxDataSize         = int(MaxPayload) // adb never frames more than its 1 MiB buffer
)

// String names the id.
func (id ShellID) String() string {
	switch id {
	case ShellStdin:
		return "stdin"
	case ShellStdout:
		return "stdout"
	case ShellStderr:
		return "stderr"
	case ShellExit:
		return "exit"
	case ShellCloseStdin:
		return "close-stdin"
	case ShellWindowSize:
		return "window-size"
	}
	return fmt.Sprintf("shell-id-%d", byte(id))
}

// ErrShellProtocol is wrapped by errors about malformed shell v2 packets.
var ErrShellProtocol = errors.New("shell protocol error")

// AppendShellPacket appends one shell v2 packet to b.
func AppendShellPacket(b []byte, id ShellID, data []byte) []byte {
	b = append(b, byte(id))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// WriteShellPacket writes one shell v2 packet in one Write call.
func WriteShellPacket(w io.Writer, id ShellID, data []byte) error {
	if len(data) > ShellMaxDataSize {
		return fmt.Errorf("writing shell %s packet of %d bytes, max %d: %w", id, len(data), ShellMaxDataSize, ErrShellProtocol)
	}
	if _, err := w.Write(AppendShellPacket(make([]byte, 0, shellHeaderSize+len(data)), id, data)); err != nil {
		return fmt.Errorf("writing shell %s packet: %w", id, err)
	}
	return nil
}

// ShellReader decodes shell v2 packets. Data slices it returns are valid until the next call.
type ShellReader struct {
	r   io.Reader
	off int64
	buf []byte
	hdr [shellHeaderSize]byte
	// MaxData bounds a packet's data; a larger length is an error before anything is allocated.
	MaxData int
}

// NewShellReader returns a ShellReader over r accepting packets of up to ShellMaxDataSize bytes.
func NewShellReader(r io.Reader) *ShellReader { return &ShellReader{r: r, MaxData: ShellMaxDataSize} }

// ReadPacket reads the next packet. A clean end of stream between packets returns io.EOF. Unknown
// ids are returned as they are (adb ignores them); an exit packet must carry exactly one byte.
func (s *ShellReader) ReadPacket() (ShellID, []byte, error) {
	at := s.off
	n, err := io.ReadFull(s.r, s.hdr[:])
	s.off += int64(n)
	if err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("reading shell packet header at offset %d: got %d of %d bytes: %w", at, n, shellHeaderSize, err)
		}
		return 0, nil, fmt.Errorf("reading shell packet header at offset %d: %w", at, err)
	}
	id := ShellID(s.hdr[0])
	size := binary.LittleEndian.Uint32(s.hdr[1:])
	if uint64(size) > uint64(s.MaxData) {
		return 0, nil, fmt.Errorf("reading shell %s packet at offset %d: %d bytes, max %d: %w", id, at, size, s.MaxData, ErrShellProtocol)
	}
	if id == ShellExit && size != 1 {
		return 0, nil, fmt.Errorf("reading shell exit packet at offset %d: %d data bytes, want 1: %w", at, size, ErrShellProtocol)
	}
	if cap(s.buf) < int(size) {
		s.buf = make([]byte, size)
	}
	b := s.buf[:size]
	n, err = io.ReadFull(s.r, b)
	s.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("reading shell %s packet data at offset %d: got %d of %d bytes: %w", id, at+shellHeaderSize, n, size, io.ErrUnexpectedEOF)
		}
		return 0, nil, fmt.Errorf("reading shell %s packet data at offset %d: %w", id, at+shellHeaderSize, err)
	}
	return id, b, nil
}
