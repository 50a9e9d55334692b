package apk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Block IDs of the ID-value pairs of the APK Signing Block.
const (
	BlockV2          = 0x7109871a
	BlockV3          = 0xf05368c0
	BlockV31         = 0x1b93ad61
	BlockV32         = 0x70e1c89f // v3.2 (hybrid post-quantum), not verified by provkit; reported when present
	BlockStampV1     = 0x2b09189e
	BlockStampV2     = 0x6dff800d
	BlockVerityPad   = 0x42726577
	BlockDependency  = 0x504b4453 // dependency info written by the Android Gradle plugin
	BlockGooglePlay  = 0x71777777 // frosting, written by Google Play
	sigBlockMagicLo  = 0x20676953204b5041
	sigBlockMagicHi  = 0x3234206b636f6c42
	sigBlockMinSize  = 32
	maxSigBlockBytes = 32 << 20 // provkit refuses larger signing blocks (memory bound); real ones are a few KiB
)

// signingBlock is the APK Signing Block: where it is and its ID-value pairs.
type signingBlock struct {
	offset int64             // start of the block in the file
	size   int64             // whole block, both size fields and the magic included
	pairs  map[uint32][]byte // first value for each ID
	ids    []uint32          // IDs in block order
}

// errNoSigningBlock means there is no (well-formed) APK Signing Block: apksig then treats the APK as
// not signed with v2 or later and falls back to JAR signing.
var errNoSigningBlock = errors.New("no APK Signing Block")

// findSigningBlock reads the APK Signing Block in front of the central directory. Like apksig it
// returns errNoSigningBlock (wrapped, with the reason) for any defect of the block's framing or
// pairs: such an APK is treated as having no v2+ signature.
func findSigningBlock(r io.ReaderAt, z *zipArchive) (*signingBlock, error) {
	cdStart := z.cdOffset
	if cdStart+z.cdSize != z.eocdOffset {
		return nil, fmt.Errorf("%w: the central directory (ends at %d) is not immediately followed by the End of Central Directory (at %d)", errNoSigningBlock, cdStart+z.cdSize, z.eocdOffset)
	}
	if cdStart < sigBlockMinSize {
		return nil, fmt.Errorf("%w: the central directory starts at %d, too early for a signing block", errNoSigningBlock, cdStart)
	}
	footer, err := readAt(r, cdStart-24, 24, "APK Signing Block footer")
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if le.Uint64(footer[8:]) != sigBlockMagicLo || le.Uint64(footer[16:]) != sigBlockMagicHi {
		return nil, fmt.Errorf("%w before the central directory at %d (no magic)", errNoSigningBlock, cdStart)
	}
	sizeFooter := le.Uint64(footer)
	if sizeFooter < 24 || sizeFooter > 1<<31-1-8 {
		return nil, fmt.Errorf("%w: block size %d in the footer at %d is out of range", errNoSigningBlock, sizeFooter, cdStart-24)
	}
	total := int64(sizeFooter) + 8
	start := cdStart - total
	if start < 0 {
		return nil, fmt.Errorf("%w: block size %d in the footer at %d reaches before the start of the file", errNoSigningBlock, sizeFooter, cdStart-24)
	}
	if total > maxSigBlockBytes {
		return nil, formatErr(start, "APK Signing Block of %d bytes is larger than the %d bytes provkit accepts", total, maxSigBlockBytes)
	}
	buf, err := readAt(r, start, int(total), "APK Signing Block")
	if err != nil {
		return nil, err
	}
	if sizeHeader := le.Uint64(buf); sizeHeader != sizeFooter {
		return nil, fmt.Errorf("%w: block sizes in header (%d, at %d) and footer (%d) differ", errNoSigningBlock, sizeHeader, start, sizeFooter)
	}
	sb := &signingBlock{offset: start, size: total, pairs: map[uint32][]byte{}}
	pairs := buf[8 : total-24]
	for n := 1; len(pairs) > 0; n++ {
		if len(pairs) < 8 {
			return nil, fmt.Errorf("%w: pair #%d at %d is truncated", errNoSigningBlock, n, start+total-24-int64(len(pairs)))
		}
		l := le.Uint64(pairs)
		if l < 4 || l > uint64(len(pairs)-8) {
			return nil, fmt.Errorf("%w: pair #%d at %d has size %d out of range", errNoSigningBlock, n, start+total-24-int64(len(pairs)), l)
		}
		id := le.Uint32(pairs[8:])
		if _, dup := sb.pairs[id]; !dup {
			sb.pairs[id] = pairs[12 : 8+l]
		}
		sb.ids = append(sb.ids, id)
		pairs = pairs[8+l:]
	}
	return sb, nil
}

// lp is a little-endian reader over a byte slice for the signing block's length-prefixed
// structures. Every read is bounds-checked; a failure sets err and later reads return zero values.
type lp struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated length-prefixed data")

func (p *lp) remaining() int { return len(p.b) }

func (p *lp) u32() uint32 {
	if p.err != nil {
		return 0
	}
	if len(p.b) < 4 {
		p.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

func (p *lp) i32() int32 { return int32(p.u32()) }

// bytes reads a uint32 length and that many bytes.
func (p *lp) bytes() []byte {
	n := p.u32()
	if p.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(p.b)) {
		p.err = fmt.Errorf("length prefix %d exceeds the %d bytes left: %w", n, len(p.b), errShort)
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

// slice is bytes returned as a new reader.
func (p *lp) slice() *lp {
	b := p.bytes()
	if p.err != nil {
		return &lp{err: p.err}
	}
	return &lp{b: b}
}
