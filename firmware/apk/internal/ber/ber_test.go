package ber_test

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/provkit/provkit/firmware/apk/internal/ber"
	d "github.com/provkit/provkit/firmware/apk/internal/dertest"
)

func TestRead(t *testing.T) {
	inner := d.Seq(d.SmallInt(5), d.Octets([]byte("abc")))
	cases := []struct {
		name    string
		in      []byte
		tag     uint32
		class   int
		content []byte
		kids    int
	}{
		{"definite", inner, ber.TagSequence, ber.ClassUniversal, inner[2:], 2},
		{"long form padded", d.LongLen(0x30, 3, inner[2:]), ber.TagSequence, ber.ClassUniversal, inner[2:], 2},
		{"indefinite", d.Indefinite(0x30, inner[2:]), ber.TagSequence, ber.ClassUniversal, inner[2:], 2},
		{"nested indefinite", d.Indefinite(0xa0, d.Indefinite(0x30, inner[2:])), 0, ber.ClassContext, d.Indefinite(0x30, inner[2:]), 1},
		{"high tag number", []byte{0x9f, 0x81, 0x00, 0x01, 0xaa}, 128, ber.ClassContext, []byte{0xaa}, -1},
		{"empty content", []byte{0x05, 0x00}, ber.TagNull, ber.ClassUniversal, []byte{}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, rest, err := ber.Read(append(append([]byte{}, tc.in...), 0xde, 0xad))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rest, []byte{0xde, 0xad}) {
				t.Errorf("rest %x", rest)
			}
			if v.Tag != tc.tag || v.Class != tc.class || !bytes.Equal(v.Content, tc.content) || !bytes.Equal(v.Raw, tc.in) {
				t.Errorf("got tag %d class %d content %x raw %x", v.Tag, v.Class, v.Content, v.Raw)
			}
			if tc.kids >= 0 {
				kids, err := v.Children()
				if err != nil || len(kids) != tc.kids {
					t.Errorf("children %d %v", len(kids), err)
				}
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	cases := map[string][]byte{
		"empty":                  {},
		"one byte":               {0x30},
		"truncated content":      {0x04, 0x05, 1, 2},
		"five length octets":     {0x04, 0x85, 0, 0, 0, 0, 1, 0},
		"length over 31 bits":    {0x04, 0x84, 0x80, 0, 0, 0},
		"truncated long length":  {0x04, 0x82, 0x01},
		"primitive indefinite":   {0x04, 0x80, 1, 0, 0},
		"unterminated":           {0x30, 0x80, 0x05, 0x00},
		"deep nesting":           bytes.Repeat([]byte{0x30, 0x80}, ber.MaxDepth+5),
		"truncated high tag":     {0x1f, 0x81},
		"huge high tag":          {0x1f, 0x8f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00},
		"child overruns parent":  {0x30, 0x80, 0x04, 0x05, 0x00, 0x00},
		"garbage in indefinite":  {0x30, 0x80, 0x04},
		"indefinite, missing 00": {0x30, 0x80, 0x00},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if v, _, err := ber.Read(in); err == nil {
				t.Fatalf("accepted: %+v", v)
			} else if !errors.Is(err, ber.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
	if _, err := ber.ReadOne([]byte{0x05, 0x00, 0x00}); err == nil {
		t.Error("ReadOne accepted a trailing byte")
	}
}

func TestIntegerAndOID(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 127, 128, -128, -129, 1 << 40, -(1 << 40)} {
		v, err := ber.ReadOne(d.SmallInt(n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ber.Integer(v.Content)
		if err != nil || got.Cmp(big.NewInt(n)) != 0 {
			t.Errorf("%d: got %v %v", n, got, err)
		}
	}
	if got, _ := ber.Integer([]byte{0x00, 0x00, 0x01}); got.Int64() != 1 {
		t.Error("redundant leading zeros not accepted")
	}
	if _, err := ber.Integer(nil); err == nil {
		t.Error("empty INTEGER accepted")
	}
	if _, err := ber.SmallInt([]byte{0x01, 0, 0, 0, 0}); err == nil {
		t.Error("SmallInt accepted a 33-bit value")
	}
	for _, oid := range []string{"1.2.840.113549.1.7.2", "2.16.840.1.101.3.4.2.1", "0.9.2342.19200300.100.1.25", "2.999.1", "1.3.14.3.2.26"} {
		v, _ := ber.ReadOne(d.OID(oid))
		if got, err := v.ReadOID(); err != nil || got != oid {
			t.Errorf("%s: got %q %v", oid, got, err)
		}
	}
	// apksig tolerates redundant 0x80 octets in a component.
	if got, err := ber.OID([]byte{0x2a, 0x80, 0x03}); err != nil || got != "1.2.3" {
		t.Errorf("padded component: %q %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0x2a, 0x86}, bytes.Repeat([]byte{0xff}, 10)} {
		if got, err := ber.OID(bad); err == nil {
			t.Errorf("%x accepted as %q", bad, got)
		}
	}
}

// FuzzRead checks that Read never panics, that what it returns slices the input consistently,
// and that Children of a constructed value cover its contents exactly.
func FuzzRead(f *testing.F) {
	inner := d.Seq(d.SmallInt(5), d.Octets([]byte("abc")), d.OID("1.2.840.113549.1.7.2"))
	f.Add(inner)
	f.Add(d.Indefinite(0xa0, d.Indefinite(0x30, inner)))
	f.Add(d.LongLen(0x31, 2, inner))
	f.Add([]byte{0x9f, 0x81, 0x00, 0x01, 0xaa})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := ber.Read(b)
		if err != nil {
			if !errors.Is(err, ber.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(v.Raw)+len(rest) != len(b) || !bytes.Equal(v.Raw, b[:len(v.Raw)]) {
			t.Fatal("Raw and rest do not split the input")
		}
		if !bytes.Contains(v.Raw, v.Content) || len(v.Content) >= len(v.Raw) {
			t.Fatal("Content is not inside Raw")
		}
		if v.Constructed {
			kids, err := v.Children()
			if err != nil {
				return
			}
			total := 0
			for _, k := range kids {
				total += len(k.Raw)
			}
			if total != len(v.Content) {
				t.Fatalf("children cover %d of %d content bytes", total, len(v.Content))
			}
		}
		if v.Tag == ber.TagOID && v.Class == ber.ClassUniversal {
			_, _ = ber.OID(v.Content)
		}
	})
}
