package payload

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Protobuf wire types, as update_metadata.proto uses them.
const (
	wireVarint  = int(protowire.VarintType)
	wireFixed64 = int(protowire.Fixed64Type)
	wireBytes   = int(protowire.BytesType)
	wireFixed32 = int(protowire.Fixed32Type)
)

// field is one decoded protobuf field: a number, its wire type and a scalar or byte payload.
type field struct {
	num  uint64
	wire int
	v    uint64 // varint, fixed32, fixed64
	b    []byte // length-delimited
	off  int64  // offset of the field's payload in the source
}

// walkProto calls fn for every field of the message b, which starts at byte offset base of its
// source. The wire format is read with protowire (google.golang.org/protobuf); errors name the
// offset. Group wire types (3, 4), which update_metadata.proto never uses, are rejected.
func walkProto(b []byte, base int64, fn func(f field) error) error {
	for pos := 0; pos < len(b); {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			// A bad varint, or a field number outside 1..2^29-1.
			return fmt.Errorf("decoding protobuf key at offset %d: %v: %w", base+int64(pos), protowire.ParseError(n), ErrCorrupt)
		}
		pos += n
		f := field{num: uint64(num), wire: int(typ), off: base + int64(pos)}
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b[pos:])
			if n < 0 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: %v: %w", f.num, f.off, protowire.ParseError(n), ErrCorrupt)
			}
			f.v, pos = v, pos+n
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b[pos:])
			if n < 0 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: truncated fixed64: %w", f.num, f.off, ErrCorrupt)
			}
			f.v, pos = v, pos+n
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(b[pos:])
			if n < 0 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: truncated fixed32: %w", f.num, f.off, ErrCorrupt)
			}
			f.v, pos = uint64(v), pos+n
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b[pos:])
			if n < 0 {
				return fmt.Errorf("decoding protobuf field %d at offset %d: length runs past the %d-byte message: %w", f.num, f.off, len(b), ErrCorrupt)
			}
			f.off = base + int64(pos+n-len(v))
			f.b, pos = v[:len(v):len(v)], pos+n
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
