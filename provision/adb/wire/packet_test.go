package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPacketRoundTrip(t *testing.T) {
	for _, version := range []uint32{VersionMin, VersionSkipChecksum} {
		pkts := []Packet{
			{Command: CmdCNXN, Arg0: Version, Arg1: MaxPayload, Payload: []byte("host::features=shell_v2,cmd")},
			{Command: CmdOPEN, Arg0: 1, Payload: []byte("shell,v2,raw:getprop\x00")},
			{Command: CmdOKAY, Arg0: 7, Arg1: 1},
			{Command: CmdWRTE, Arg0: 7, Arg1: 1, Payload: bytes.Repeat([]byte{0xff}, 4096)},
			{Command: CmdCLSE, Arg0: 0, Arg1: 1},
		}
		var buf bytes.Buffer
		for _, p := range pkts {
			if err := WritePacket(&buf, p, version); err != nil {
				t.Fatal(err)
			}
		}
		r := NewReader(&buf)
		r.Version = version
		for i, want := range pkts {
			got, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("version %#x packet %d: %v", version, i, err)
			}
			if got.Command != want.Command || got.Arg0 != want.Arg0 || got.Arg1 != want.Arg1 || !bytes.Equal(got.Payload, want.Payload) {
				t.Fatalf("version %#x packet %d: got %v, want %v", version, i, got, want)
			}
		}
		if _, err := r.ReadPacket(); err != io.EOF {
			t.Fatalf("after the last packet: %v, want io.EOF", err)
		}
	}
}

func TestPacketHeaderLayout(t *testing.T) {
	// A CNXN as adb 29 sends it before negotiation: checksum computed, magic = ^command.
	p := Packet{Command: CmdCNXN, Arg0: 0x01000001, Arg1: 0x100000, Payload: []byte("ab")}
	b := p.Marshal(VersionMin)
	want := []byte{
		'C', 'N', 'X', 'N', 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x10, 0x00,
		0x02, 0, 0, 0, 'a' + 'b', 0, 0, 0, ^byte('C'), ^byte('N'), ^byte('X'), ^byte('N'), 'a', 'b',
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("marshal:\n got % x\nwant % x", b, want)
	}
	if b := p.Marshal(VersionSkipChecksum); !bytes.Equal(b[16:20], []byte{0, 0, 0, 0}) {
		t.Fatalf("checksum written at skip-checksum version: % x", b[16:20])
	}
	for _, c := range []Command{CmdSYNC, CmdCNXN, CmdAUTH, CmdOPEN, CmdOKAY, CmdCLSE, CmdWRTE, CmdSTLS} {
		if s := c.String(); len(s) != 4 || strings.ToUpper(s) != s {
			t.Errorf("command %#x prints as %q", uint32(c), s)
		}
	}
	if s := Command(0x12345678).String(); s != "0x12345678" {
		t.Errorf("unknown command prints as %q", s)
	}
}

func TestReadPacketErrors(t *testing.T) {
	good := Packet{Command: CmdWRTE, Arg0: 1, Arg1: 2, Payload: []byte("hello")}.Marshal(VersionMin)

	badMagic := append([]byte(nil), good...)
	badMagic[20] ^= 1
	badSum := append([]byte(nil), good...)
	badSum[16]++
	tests := []struct {
		name string
		in   []byte
		max  uint32
		want error
	}{
		{"bad magic", badMagic, MaxPayload, ErrBadMagic},
		{"too large", good, 4, ErrPayloadTooLarge},
		{"short header", good[:10], MaxPayload, ErrTruncated},
		{"short payload", good[:HeaderSize+2], MaxPayload, ErrTruncated},
		{"bad checksum", badSum, MaxPayload, ErrBadChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in))
			r.MaxPayload = tt.max
			_, err := r.ReadPacket()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "offset ") {
				t.Errorf("error does not say where: %v", err)
			}
		})
	}
	// A zero checksum is accepted (a reconnecting adb host sends one).
	zeroSum := append([]byte(nil), good...)
	copy(zeroSum[16:20], []byte{0, 0, 0, 0})
	if _, err := NewReader(bytes.NewReader(zeroSum)).ReadPacket(); err != nil {
		t.Fatalf("zero checksum: %v", err)
	}
	// A wrong checksum is ignored once the skip-checksum version is negotiated.
	r := NewReader(bytes.NewReader(badSum))
	r.Version = VersionSkipChecksum
	if _, err := r.ReadPacket(); err != nil {
		t.Fatalf("skip-checksum: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	v, m := Negotiate(VersionSkipChecksum, MaxPayload, VersionMin, MaxPayloadV1)
	if v != VersionMin || m != MaxPayloadV1 {
		t.Fatalf("got %#x %d", v, m)
	}
}

func FuzzReadPacket(f *testing.F) {
	f.Add(Packet{Command: CmdCNXN, Arg0: Version, Arg1: MaxPayload, Payload: []byte("device::ro.product.name=x;features=cmd")}.Marshal(VersionMin))
	f.Add(Packet{Command: CmdOKAY, Arg0: 1, Arg1: 2}.Marshal(VersionSkipChecksum))
	f.Add(append(Packet{Command: CmdWRTE, Arg0: 1, Arg1: 2, Payload: []byte("x")}.Marshal(VersionMin), 0, 1, 2))
	f.Add([]byte("CNXN\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		r.MaxPayload = 4096
		var consumed int
		for range 64 {
			p, err := r.ReadPacket()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrPayloadTooLarge) &&
					!errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadChecksum) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			if len(p.Payload) > 4096 {
				t.Fatalf("payload of %d bytes passed a 4096 limit", len(p.Payload))
			}
			// What was read re-encodes to the same bytes (a zero checksum, which the reader accepts
			// as "not sent", stays zero).
			enc := p.Marshal(VersionMin)
			if binary.LittleEndian.Uint32(in[consumed+16:]) == 0 {
				binary.LittleEndian.PutUint32(enc[16:], 0)
			}
			if !bytes.Equal(enc, in[consumed:consumed+len(enc)]) {
				t.Fatalf("re-encoding differs:\n got % x\nwant % x", enc, in[consumed:consumed+len(enc)])
			}
			consumed += len(enc)
			if int64(consumed) != r.Offset() {
				t.Fatalf("offset %d, consumed %d", r.Offset(), consumed)
			}
		}
	})
}
