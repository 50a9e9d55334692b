package ber

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Tag classes (the two high bits of the first identifier octet).
const (
	ClassUniversal   = 0
	ClassApplication = 1
	ClassContext     = 2
	ClassPrivate     = 3
)

// Universal tag numbers used by the signature formats.
const (
	TagBoolean         = 1
	TagInteger         = 2
	TagBitString       = 3
	TagOctetString     = 4
	TagNull            = 5
	TagOID             = 6
	TagUTF8String      = 12
	TagSequence        = 16
	TagSet             = 17
	TagNumericString   = 18
	TagPrintableString = 19
	TagT61String       = 20
	TagIA5String       = 22
	TagUTCTime         = 23
	TagGeneralizedTime = 24
	TagVisibleString   = 26
	TagGeneralString   = 27
	TagUniversalString = 28
	TagBMPString       = 30
)

// MaxDepth bounds how deeply indefinite-length values may nest. Finding the end of an
// indefinite-length value means reading its children, so without a bound a hostile input of
// 0x30 0x80 repeated would recurse once per two bytes.
const MaxDepth = 64

// ErrMalformed is wrapped by every error this package returns.
var ErrMalformed = errors.New("malformed ASN.1")

// TLV is one decoded value. Raw and Content alias the input.
type TLV struct {
	Class       int
	Constructed bool
	Tag         uint32
	Indefinite  bool   // length octets were 0x80; Raw then ends with the 0x00 0x00 terminator
	Raw         []byte // identifier, length, contents (and terminator)
	Content     []byte // contents octets only
	Offset      int    // offset of Raw in the buffer the outermost Read was given
}

// Is reports whether v has the given class and tag number.
func (v TLV) Is(class int, tag uint32) bool { return v.Class == class && v.Tag == tag }

// String describes the value's tag for error messages, e.g. "SEQUENCE" or "[0]".
func (v TLV) String() string {
	switch v.Class {
	case ClassUniversal:
		return universalName(v.Tag)
	case ClassContext:
		return "[" + strconv.FormatUint(uint64(v.Tag), 10) + "]"
	case ClassApplication:
		return "[APPLICATION " + strconv.FormatUint(uint64(v.Tag), 10) + "]"
	default:
		return "[PRIVATE " + strconv.FormatUint(uint64(v.Tag), 10) + "]"
	}
}

func universalName(tag uint32) string {
	names := map[uint32]string{
		TagBoolean: "BOOLEAN", TagInteger: "INTEGER", TagBitString: "BIT STRING",
		TagOctetString: "OCTET STRING", TagNull: "NULL", TagOID: "OBJECT IDENTIFIER",
		TagUTF8String: "UTF8String", TagSequence: "SEQUENCE", TagSet: "SET",
		TagPrintableString: "PrintableString", TagT61String: "T61String", TagIA5String: "IA5String",
		TagUTCTime: "UTCTime", TagGeneralizedTime: "GeneralizedTime", TagBMPString: "BMPString",
	}
	if n, ok := names[tag]; ok {
		return n
	}
	return "UNIVERSAL " + strconv.FormatUint(uint64(tag), 10)
}

func errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrMalformed, off, fmt.Sprintf(format, args...))
}

// Read decodes the first TLV of b and returns it with the bytes that follow it.
func Read(b []byte) (TLV, []byte, error) {
	v, n, err := read(b, 0, 0)
	if err != nil {
		return TLV{}, nil, err
	}
	return v, b[n:], nil
}

// ReadOne decodes b, which must hold exactly one TLV.
func ReadOne(b []byte) (TLV, error) {
	v, rest, err := Read(b)
	if err != nil {
		return TLV{}, err
	}
	if len(rest) != 0 {
		return TLV{}, errorf(len(b)-len(rest), "%d bytes after the %s", len(rest), v)
	}
	return v, nil
}

// read decodes the TLV at b[0:]; base is b's offset in the outermost input (for messages).
func read(b []byte, base, depth int) (TLV, int, error) {
	if depth > MaxDepth {
		return TLV{}, 0, errorf(base, "values nested deeper than %d levels", MaxDepth)
	}
	if len(b) < 2 {
		return TLV{}, 0, errorf(base, "truncated identifier or length (%d bytes left)", len(b))
	}
	v := TLV{Class: int(b[0] >> 6), Constructed: b[0]&0x20 != 0, Offset: base}
	p := 1
	if t := b[0] & 0x1f; t != 0x1f {
		v.Tag = uint32(t)
	} else {
		// High tag number form: base-128, high bit set on all but the last octet.
		var tag uint32
		for {
			if p >= len(b) {
				return TLV{}, 0, errorf(base, "truncated tag number")
			}
			c := b[p]
			p++
			if tag > (1<<31-1)>>7 {
				return TLV{}, 0, errorf(base, "tag number too large")
			}
			tag = tag<<7 | uint32(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		v.Tag = tag
	}
	if p >= len(b) {
		return TLV{}, 0, errorf(base, "missing length")
	}
	l := b[p]
	p++
	switch {
	case l < 0x80:
		return definite(b, base, p, int(l), v)
	case l == 0x80:
		if !v.Constructed {
			return TLV{}, 0, errorf(base, "primitive %s with an indefinite length", v)
		}
		v.Indefinite = true
		start := p
		for {
			if len(b)-p >= 2 && b[p] == 0 && b[p+1] == 0 {
				v.Content = b[start:p:p]
				p += 2
				v.Raw = b[:p:p]
				return v, p, nil
			}
			if p >= len(b) {
				return TLV{}, 0, errorf(base, "indefinite-length %s has no end-of-contents octets", v)
			}
			_, n, err := read(b[p:], base+p, depth+1)
			if err != nil {
				return TLV{}, 0, err
			}
			p += n
		}
	default:
		// Long form. Like apksig, accept leading zero octets (not minimal, so not DER) but at most
		// four length octets and a length that fits in 31 bits.
		count := int(l & 0x7f)
		if count > 4 {
			return TLV{}, 0, errorf(base, "length of %s takes %d octets", v, count)
		}
		if len(b)-p < count {
			return TLV{}, 0, errorf(base, "truncated length")
		}
		n := 0
		for i := 0; i < count; i++ {
			if n > (1<<31-1)>>8 {
				return TLV{}, 0, errorf(base, "length too large")
			}
			n = n<<8 | int(b[p])
			p++
		}
		return definite(b, base, p, n, v)
	}
}

func definite(b []byte, base, p, n int, v TLV) (TLV, int, error) {
	if n > len(b)-p {
		return TLV{}, 0, errorf(base, "%s declares %d content bytes, %d available", v, n, len(b)-p)
	}
	v.Content = b[p : p+n : p+n]
	v.Raw = b[: p+n : p+n]
	return v, p + n, nil
}

// Children decodes the TLVs inside a constructed value, in order.
func (v TLV) Children() ([]TLV, error) {
	if !v.Constructed {
		return nil, errorf(v.Offset, "%s is not constructed", v)
	}
	var out []TLV
	b := v.Content
	base := v.Offset + (len(v.Raw) - len(v.Content))
	if v.Indefinite {
		base = v.Offset + len(v.Raw) - len(v.Content) - 2
	}
	for p := 0; p < len(b); {
		c, n, err := read(b[p:], base+p, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p += n
	}
	return out, nil
}

// Expect checks that v is a universal value with the given tag and the constructed bit that tag
// requires.
func (v TLV) Expect(tag uint32) error {
	if v.Class != ClassUniversal || v.Tag != tag {
		return errorf(v.Offset, "expected %s, found %s", universalName(tag), v)
	}
	wantConstructed := tag == TagSequence || tag == TagSet
	if v.Constructed != wantConstructed {
		return errorf(v.Offset, "%s has the wrong constructed bit", v)
	}
	return nil
}

// Integer decodes an INTEGER's contents as a two's-complement big-endian number. Like Java's
// BigInteger, it accepts redundant leading octets.
func Integer(content []byte) (*big.Int, error) {
	if len(content) == 0 {
		return nil, fmt.Errorf("%w: empty INTEGER", ErrMalformed)
	}
	n := new(big.Int).SetBytes(content)
	if content[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(content))*8))
	}
	return n, nil
}

// SmallInt decodes an INTEGER that must fit in an int32, as apksig's int fields do.
func SmallInt(content []byte) (int, error) {
	n, err := Integer(content)
	if err != nil {
		return 0, err
	}
	if !n.IsInt64() || n.Int64() > 1<<31-1 || n.Int64() < -1<<31 {
		return 0, fmt.Errorf("%w: INTEGER %s out of range", ErrMalformed, n)
	}
	return int(n.Int64()), nil
}

// OID decodes an OBJECT IDENTIFIER's contents into dotted form ("1.2.840.113549.1.7.2"). It
// accepts, as apksig does, components encoded with redundant leading 0x80 octets; components
// must fit in 63 bits.
func OID(content []byte) (string, error) {
	if len(content) == 0 {
		return "", fmt.Errorf("%w: empty OBJECT IDENTIFIER", ErrMalformed)
	}
	var sb strings.Builder
	first := true
	for p := 0; p < len(content); {
		var c uint64
		for {
			if p >= len(content) {
				return "", fmt.Errorf("%w: truncated OBJECT IDENTIFIER component", ErrMalformed)
			}
			o := content[p]
			p++
			if c > (1<<63-1)>>7 {
				return "", fmt.Errorf("%w: OBJECT IDENTIFIER component too large", ErrMalformed)
			}
			c = c<<7 | uint64(o&0x7f)
			if o&0x80 == 0 {
				break
			}
		}
		if first {
			first = false
			switch {
			case c < 40:
				sb.WriteString("0.")
			case c < 80:
				sb.WriteString("1.")
				c -= 40
			default:
				sb.WriteString("2.")
				c -= 80
			}
			sb.WriteString(strconv.FormatUint(c, 10))
			continue
		}
		sb.WriteByte('.')
		sb.WriteString(strconv.FormatUint(c, 10))
	}
	return sb.String(), nil
}

// ReadOID reads a TLV that must be an OBJECT IDENTIFIER and returns its dotted form.
func (v TLV) ReadOID() (string, error) {
	if err := v.Expect(TagOID); err != nil {
		return "", err
	}
	s, err := OID(v.Content)
	if err != nil {
		return "", fmt.Errorf("at offset %d: %w", v.Offset, err)
	}
	return s, nil
}
