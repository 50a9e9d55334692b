package erofs

import (
	"errors"
	"fmt"

	"github.com/pierrec/lz4/v4"
)

var (
	errLZ4Truncated = errors.New("lz4 stream truncated")
	errLZ4Offset    = errors.New("lz4 match offset out of range")
	errLZ4Overflow  = errors.New("lz4 stream decodes to more than the extent size")
	errLZ4Short     = errors.New("lz4 stream decodes to less than the extent size")
	errLZ4Trailing  = errors.New("lz4 stream has bytes after its last sequence")
)

// decodeLZ4Block decodes the LZ4 block src into dst and returns how many bytes it wrote.
//
// EROFS needs two ways of decoding. Exact (partial false): src is exactly one block whose output
// must be exactly len(dst) bytes, as Linux's LZ4_decompress_safe checks for 0padding images.
// Partial (partial true): decoding stops as soon as len(dst) bytes are out, whatever follows in
// src, as LZ4_decompress_safe_partial does for images without 0padding (whose pclusters may hold
// more than the extent) and for extents that use a prefix of a shared pcluster.
//
// The decoder never reads outside src nor writes outside dst, whatever src holds.
func decodeLZ4Block(dst, src []byte, partial bool) (int, error) {
	d, s := 0, 0
	for {
		if s >= len(src) {
			return d, errLZ4Truncated
		}
		token := src[s]
		s++
		// Literals.
		lit := int(token >> 4)
		if lit == 15 {
			for {
				if s >= len(src) {
					return d, errLZ4Truncated
				}
				b := src[s]
				s++
				lit += int(b)
				if lit > len(src) { // cannot be backed by input: stop before the int grows
					return d, errLZ4Truncated
				}
				if b != 255 {
					break
				}
			}
		}
		if lit > len(src)-s {
			if partial && len(dst)-d <= len(src)-s {
				// The output fills up inside these literals; what the stream claims after that
				// does not matter to a partial decode.
				d += copy(dst[d:], src[s:])
				return d, nil
			}
			return d, errLZ4Truncated
		}
		if lit > len(dst)-d {
			if partial {
				d += copy(dst[d:], src[s:s+lit])
				return d, nil
			}
			return d, errLZ4Overflow
		}
		d += copy(dst[d:], src[s:s+lit])
		s += lit
		if s == len(src) {
			// The last sequence has literals only.
			if !partial && d != len(dst) {
				return d, errLZ4Short
			}
			return d, nil
		}
		if partial && d == len(dst) {
			return d, nil
		}
		// Match.
		if len(src)-s < 2 {
			return d, errLZ4Truncated
		}
		off := int(src[s]) | int(src[s+1])<<8
		s += 2
		if off == 0 || off > d {
			return d, errLZ4Offset
		}
		ml := int(token & 15)
		if ml == 15 {
			for {
				if s >= len(src) {
					return d, errLZ4Truncated
				}
				b := src[s]
				s++
				ml += int(b)
				if b != 255 || ml > len(dst) {
					// Past len(dst) the match cannot fit: an exact decode fails below and a
					// partial one clips it and is done, so the rest of the length is not needed.
					break
				}
			}
		}
		ml += 4
		if ml > len(dst)-d {
			if !partial {
				return d, errLZ4Overflow
			}
			ml = len(dst) - d
		}
		if off >= ml {
			d += copy(dst[d:d+ml], dst[d-off:d-off+ml])
		} else {
			// Overlapping copy: the match repeats the last off bytes; each copy doubles what
			// is available to copy from.
			start, end := d-off, d+ml
			for d < end {
				d += copy(dst[d:end], dst[start:d])
			}
		}
		if partial && d == len(dst) {
			return d, nil
		}
	}
}

// lz4Error names where a pcluster failed to decode.
func lz4Error(err error, nid uint64, la, pa int64, plen, llen int64) error {
	kind := ErrCorrupt
	return fmt.Errorf("decompressing lz4 pcluster of inode %d (file offset %d, %d bytes) at image offset %d (%d bytes): %w: %w", nid, la, llen, pa, plen, err, kind)
}

// decodeLZ4 decodes like decodeLZ4Block, but takes the exact case (every 0padding image, i.e.
// every image Android builds) through github.com/pierrec/lz4, whose assembly decoder is several
// times faster. FuzzLZ4 checks that it gives what decodeLZ4Block gives. pierrec/lz4 differs from
// liblz4 (what Linux runs) both ways: it refuses some blocks liblz4 accepts
// (TestLZ4StricterPierrec), which decodeLZ4Block then decides, and it accepts blocks that end in
// a match instead of literals, which liblz4 refuses (TestLZ4LaxerPierrec); lz4EndsWithLiterals
// sends those to decodeLZ4Block too, so provkit does not read a file the device cannot.
func decodeLZ4(dst, src []byte, partial bool) (int, error) {
	if !partial {
		if n, err := lz4.UncompressBlock(src, dst); err == nil && n == len(dst) && lz4EndsWithLiterals(src) {
			return n, nil
		}
	}
	return decodeLZ4Block(dst, src, partial)
}

// lz4EndsWithLiterals walks the sequences of the LZ4 block src without decoding them and reports
// whether the block ends right after the literals of a sequence, as the block format requires
// ("the last sequence contains only literals"). It costs a few operations per sequence.
func lz4EndsWithLiterals(src []byte) bool {
	s := 0
	for s < len(src) {
		token := src[s]
		s++
		lit := int(token >> 4)
		if lit == 15 {
			for s < len(src) {
				b := src[s]
				s++
				lit += int(b)
				if b != 255 || lit > len(src) {
					break
				}
			}
		}
		if lit > len(src)-s {
			return false
		}
		s += lit
		if s == len(src) {
			return true
		}
		s += 2 // match offset
		if token&15 == 15 {
			for s < len(src) {
				b := src[s]
				s++
				if b != 255 {
					break
				}
			}
		}
	}
	return false
}
