package payload

import (
	"encoding/binary"
	"fmt"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// field is one decoded protobuf field: a number, its wire type and a scalar or byte payload.
type field struct {
	num  uint64
	wire int
	v    uint64 // varint, fixed32, fixed64
	b    []byte // length-delimited
	off  int64  // offset of the field's payload in the source
}

// walkProto calls fn for every field of the message b, which starts at byte offset base of its source.
// Group wire types (3, 4), which update_metadata.proto never uses, are rejected.
func walkProto(b []byte, base int64, fn func(f field) error) error {
	for pos := 0; pos < len(b); {
		key, n := binary.Uvarint(b[pos:])
		if n <= 0 {
			return fmt.Errorf("decoding protobuf key at offset %d: bad varint: %w", base+int64(pos), ErrCorrupt)
		}
		pos += n
		f := field{num: key >> 3, wire: int(key & 7), off: base + int64(pos)}
		if f.num == 0 {
			return fmt.Errorf("decoding protobuf field at offset %d: field number 0: %w", f.off, ErrCorrupt)
		}
		switch f.wire {
		case wireVarint:
			v, n := binary.Uvarint(b[pos:])
			if n <= 0 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: bad varint: %w", f.num, f.off, ErrCorrupt)
			}
			f.v, pos = v, pos+n
		case wireFixed64:
			if len(b)-pos < 8 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: truncated fixed64: %w", f.num, f.off, ErrCorrupt)
			}
			f.v, pos = binary.LittleEndian.Uint64(b[pos:]), pos+8
		case wireFixed32:
			if len(b)-pos < 4 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: truncated fixed32: %w", f.num, f.off, ErrCorrupt)
			}
			f.v, pos = uint64(binary.LittleEndian.Uint32(b[pos:])), pos+4
		case wireBytes:
			l, n := binary.Uvarint(b[pos:])
			if n <= 0 || l > uint64(len(b)-pos-n) {
				return fmt.Errorf("decoding protobuf field %d at offset %d: length runs past the %d-byte message: %w", f.num, f.off, len(b), ErrCorrupt)
			}
			pos += n
			f.off = base + int64(pos)
			f.b, pos = b[pos:pos+int(l):pos+int(l)], pos+int(l)
		default:
			return fmt.Errorf("decoding protobuf field %d at offset %d: unsupported wire type %d: %w", f.num, f.off, f.wire, ErrCorrupt)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks a field's wire type.
func (f field) want(wire int, msg string) error {
	if f.wire != wire {
		return fmt.Errorf("decoding %s field %d at offset %d: wire type %d, want %d: %w", msg, f.num, f.off, f.wire, wire, ErrCorrupt)
	}
	return nil
}
