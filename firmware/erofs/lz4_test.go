package erofs

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// compressBlock makes an LZ4 block of data with github.com/pierrec/lz4 (fast or HC).
func compressBlock(t testing.TB, data []byte, hc bool) []byte {
	t.Helper()
	dst := make([]byte, lz4.CompressBlockBound(len(data)))
	var n int
	var err error
	if hc {
		n, err = lz4.CompressBlockHC(data, dst, lz4.Level9, nil, nil)
	} else {
		n, err = lz4.CompressBlock(data, dst, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 { // incompressible: pierrec signals it with 0; encode as one literal run
		return literalBlock(data)
	}
	return dst[:n]
}

// literalBlock encodes data as a single LZ4 sequence of literals.
func literalBlock(data []byte) []byte {
	var b bytes.Buffer
	n := len(data)
	if n < 15 {
		b.WriteByte(byte(n << 4))
	} else {
		b.WriteByte(0xf0)
		n -= 15
		for n >= 255 {
			b.WriteByte(255)
			n -= 255
		}
		b.WriteByte(byte(n))
	}
	b.Write(data)
	return b.Bytes()
}

func lz4Samples(r *rand.Rand) [][]byte {
	return [][]byte{
		[]byte("a"),
		bytes.Repeat([]byte("a"), 70000),
		bytes.Repeat([]byte("abc"), 5000),
		mixedBytes(r, 4096),
		mixedBytes(r, 65536+11),
		randomBytes(r, 3000),
		append(randomBytes(r, 100), bytes.Repeat([]byte{0}, 9000)...),
	}
}

func TestDecodeLZ4(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i, want := range lz4Samples(r) {
		for _, hc := range []bool{false, true} {
			blk := compressBlock(t, want, hc)
			got := make([]byte, len(want))
			n, err := decodeLZ4Block(got, blk, false)
			if err != nil || n != len(want) || !bytes.Equal(got, want) {
				t.Fatalf("sample %d hc=%v: exact decode n=%d err=%v equal=%v", i, hc, n, err, bytes.Equal(got, want))
			}
			// Exact decoding refuses a wrong expected size, both ways.
			if _, err := decodeLZ4Block(make([]byte, len(want)+1), blk, false); !errors.Is(err, errLZ4Short) {
				t.Errorf("sample %d: output one byte short of the extent: %v, want errLZ4Short", i, err)
			}
			if len(want) > 1 {
				if _, err := decodeLZ4Block(make([]byte, len(want)-1), blk, false); !errors.Is(err, errLZ4Overflow) {
					t.Errorf("sample %d: output one byte over the extent: %v, want errLZ4Overflow", i, err)
				}
			}
			// Partial decoding of every prefix length gives the prefix.
			for _, k := range []int{1, 7, 15, 16, 19, len(want) / 2, len(want) - 1, len(want)} {
				if k <= 0 || k > len(want) {
					continue
				}
				p := make([]byte, k)
				n, err := decodeLZ4Block(p, blk, true)
				if err != nil || n != k || !bytes.Equal(p, want[:k]) {
					t.Fatalf("sample %d hc=%v: partial decode of %d bytes: n=%d err=%v", i, hc, k, n, err)
				}
			}
			// Truncated input is an error, never a panic.
			for cut := 0; cut < len(blk); cut += 1 + len(blk)/17 {
				if _, err := decodeLZ4Block(make([]byte, len(want)), blk[:cut], false); err == nil {
					t.Errorf("sample %d: decoding %d of %d bytes succeeded", i, cut, len(blk))
				}
			}
		}
	}
	// A match pointing before the start of the output.
	if _, err := decodeLZ4Block(make([]byte, 100), []byte{0x10, 'a', 0x05, 0x00, 0x00}, false); !errors.Is(err, errLZ4Offset) {
		t.Errorf("match before output start: %v", err)
	}
	if _, err := decodeLZ4Block(make([]byte, 100), []byte{0x10, 'a', 0x00, 0x00}, false); !errors.Is(err, errLZ4Offset) {
		t.Errorf("match offset 0: %v", err)
	}
}

// TestLZ4StricterPierrec: a block that liblz4's LZ4_decompress_safe (what Linux runs) decodes to
// 5000 '0' bytes, checked with liblz4 1.9.4 through ctypes, and that pierrec/lz4 refuses ("invalid
// source or destination buffer too short"). decodeLZ4 falls back to decodeLZ4Block and reads it
// as the kernel does. FuzzLZ4 found it.
func TestLZ4StricterPierrec(t *testing.T) {
	src := append(append([]byte("\x1f0\x01\x00"), bytes.Repeat([]byte{0xff}, 19)...), "t10000\x00\xba00000000000"...)
	want := bytes.Repeat([]byte("0"), 5000)
	if n, err := lz4.UncompressBlock(src, make([]byte, 5000)); err == nil && n == 5000 {
		t.Log("pierrec/lz4 now decodes this block too")
	}
	got := make([]byte, 5000)
	if n, err := decodeLZ4(got, src, false); err != nil || n != 5000 || !bytes.Equal(got, want) {
		t.Fatalf("decodeLZ4 = %d, %v; want 5000 '0' bytes as liblz4 gives", n, err)
	}
}

// TestLZ4LaxerPierrec: a block whose last sequence is a match (one literal, then a match of 4984
// bytes whose length runs to the last byte): pierrec/lz4 decodes it to 4985 bytes, liblz4 1.9.4's
// LZ4_decompress_safe and LZ4_decompress_safe_partial refuse it (-22, checked with a small C
// program against liblz4.so.1), as the block format says the last sequence holds only literals.
// decodeLZ4 took pierrec/lz4's result and so read a pcluster Linux cannot; FuzzLZ4 found it.
func TestLZ4LaxerPierrec(t *testing.T) {
	src := append(append([]byte("\x1f0\x01\x00"), bytes.Repeat([]byte{0xff}, 19)...), 'x')
	if n, err := lz4.UncompressBlock(src, make([]byte, 4985)); err != nil || n != 4985 {
		t.Logf("pierrec/lz4 no longer decodes this block: %d, %v", n, err)
	}
	if lz4EndsWithLiterals(src) {
		t.Error("a block ending in a match ends with literals")
	}
	if n, err := decodeLZ4(make([]byte, 4985), src, false); !errors.Is(err, errLZ4Truncated) {
		t.Fatalf("decodeLZ4 = %d, %v; want the block refused as liblz4 does", n, err)
	}
}

// FuzzLZ4 checks the decoder against github.com/pierrec/lz4 on arbitrary blocks: whenever both
// decode a block, they agree byte for byte; whatever pierrec/lz4 decodes exactly, ours decodes
// too unless the block ends in a match (TestLZ4LaxerPierrec), and then ours decodes its bytes
// partially; decodeLZ4 (pierrec/lz4 when it can) gives exactly what decodeLZ4Block gives;
// partial decoding gives a prefix of a full decode. Ours may accept blocks pierrec/lz4 refuses
// (TestLZ4StricterPierrec): liblz4 does too. Never a panic, never a write past dst.
func FuzzLZ4(f *testing.F) {
	r := rand.New(rand.NewSource(2))
	for _, s := range lz4Samples(r) {
		f.Add(compressBlock(f, s[:min(len(s), 5000)], false), uint16(min(len(s), 5000)))
		f.Add(compressBlock(f, s[:min(len(s), 5000)], true), uint16(min(len(s), 5000)))
	}
	f.Add([]byte{0x10, 'a', 0x01, 0x00, 0x50, 'b', 'c', 'd', 'e', 'f'}, uint16(25))
	f.Fuzz(func(t *testing.T, src []byte, size uint16) {
		n := int(size)
		ref := make([]byte, n)
		rn, rerr := lz4.UncompressBlock(src, ref)

		got := make([]byte, n+8) // guard bytes detect writes past the requested size
		for i := n; i < len(got); i++ {
			got[i] = 0xa5
		}
		gn, gerr := decodeLZ4Block(got[:n], src, false)
		for i := n; i < len(got); i++ {
			if got[i] != 0xa5 {
				t.Fatalf("decoder wrote past dst at %d", i)
			}
		}
		if gerr == nil && gn != n {
			t.Fatalf("exact decode returned %d bytes without error, want %d", gn, n)
		}
		if gerr == nil && n > 0 && rerr == nil && (rn != n || !bytes.Equal(ref[:rn], got[:n])) {
			t.Fatalf("we decoded %d bytes, pierrec/lz4 %d or different bytes", n, rn)
		}
		if rerr == nil && rn == n && n > 0 {
			if gerr != nil && lz4EndsWithLiterals(src) || gerr == nil && !bytes.Equal(ref, got[:n]) {
				t.Fatalf("pierrec/lz4 decoded %d bytes, we failed: %v", rn, gerr)
			}
			if gerr != nil {
				p := make([]byte, n)
				if pn, perr := decodeLZ4Block(p, src, true); perr != nil || pn != n || !bytes.Equal(p, ref) {
					t.Fatalf("pierrec/lz4 decoded %d bytes of a block ending in a match, our partial decode %d: %v", rn, pn, perr)
				}
			}
		}
		// The fast path changes no result.
		fast := make([]byte, n)
		fn, ferr := decodeLZ4(fast, src, false)
		if fn != gn && ferr == nil || (ferr == nil) != (gerr == nil) || ferr == nil && !bytes.Equal(fast, got[:n]) {
			t.Fatalf("decodeLZ4 = %d, %v; decodeLZ4Block = %d, %v", fn, ferr, gn, gerr)
		}
		// Partial decoding must yield a prefix of a successful full decode.
		if rerr == nil && rn > 0 {
			k := 1 + rn/2
			p := make([]byte, k)
			pn, perr := decodeLZ4Block(p, src, true)
			if perr != nil || pn != k || !bytes.Equal(p, ref[:k]) {
				t.Fatalf("partial decode of %d bytes of a valid %d-byte block: n=%d err=%v", k, rn, pn, perr)
			}
		}
		if gerr == nil && n > 0 {
			k := 1 + n/2
			p := make([]byte, k)
			if pn, perr := decodeLZ4Block(p, src, true); perr != nil || pn != k || !bytes.Equal(p, got[:k]) {
				t.Fatalf("partial decode of %d bytes of a block we decode to %d: n=%d err=%v", k, n, pn, perr)
			}
		}
	})
}

func BenchmarkDecodeLZ4(b *testing.B) {
	r := rand.New(rand.NewSource(3))
	data := mixedBytes(r, 64<<10)
	blk := compressBlock(b, data, true)
	out := make([]byte, len(data))
	b.Run("provkit", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodeLZ4Block(out, blk, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pierrec", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := lz4.UncompressBlock(blk, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What exact pclusters go through: pierrec/lz4 plus the end-of-block walk.
	b.Run("decodeLZ4", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodeLZ4(out, blk, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
