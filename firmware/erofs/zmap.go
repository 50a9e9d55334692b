package erofs

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Map header advise bits (h_advise).
const (
	zAdviseCompacted2B    = 0x0001
	zAdviseBigPcluster1   = 0x0002
	zAdviseBigPcluster2   = 0x0004
	zAdviseInlinePcluster = 0x0008
	zAdviseInterlaced     = 0x0010
	zAdviseFragment       = 0x0020
	zAdviseKnown          = zAdviseCompacted2B | zAdviseBigPcluster1 | zAdviseBigPcluster2 | zAdviseInlinePcluster | zAdviseInterlaced | zAdviseFragment
)

// Logical cluster types.
const (
	lclusterPlain   = 0
	lclusterHead1   = 1
	lclusterNonhead = 2
	lclusterHead2   = 3
)

const (
	liPartialRef   = 1 << 15 // full indexes, HEAD: the extent uses a prefix of its pcluster
	liD0CBlkCnt    = 1 << 11 // delta[0] of the first NONHEAD holds the pcluster's block count
	mapHeaderSize  = 8
	fullIndexSize  = 8
	fullIndexExtra = 8 // padding between the map header and full indexes
)

// zmap maps file offsets of a compressed inode to extents and their pclusters, by reading the
// inode's logical cluster indexes (full or compacted).
type zmap struct {
	f            *FS
	in           *Inode
	advise       uint16
	algs         [2]int
	lclusterBits uint
	totalLcn     uint64 // logical clusters in the file
	compactBlks  uint64 // blocks of the file, as the compacted layout counts indexes
	ztail        bool   // the tail pcluster is inline (ztailpacking)
	tailHeadLcn  uint64
	idataOff     int64
	idataSize    int64

	mu      sync.Mutex
	blk     []byte // one cached metadata block of indexes
	blkAddr int64  // its byte offset, -1 when empty
	blkLen  int64  // bytes of it inside the image

	raMu   sync.Mutex
	ra     []byte // readahead window of image bytes, for sequential reads
	raOff  int64
	raNext int64 // where the last pcluster read ended
}

// readaheadSize is how much of the image a sequential reader fetches at once: pclusters of a
// file are laid out one after the other, so reading a file through reads each block once in
// large requests instead of one request per pcluster.
const readaheadSize = 256 << 10

// zextent is one mapped extent of a compressed file.
type zextent struct {
	la, llen int64 // decompressed bytes [la, la+llen) of the file
	pa, plen int64 // compressed bytes [pa, pa+plen) of the image
	headType int
	alg      int // algLZ4, or -1 for an uncompressed (PLAIN) pcluster
	inline   bool
	partial  bool // decode only a prefix of the pcluster's output
}

// recorder mirrors what reading one logical cluster index yields. Fields are only set by the
// index types that carry them, so values from an earlier read can carry over, as Linux relies on.
type recorder struct {
	lcn            uint64
	typ            int
	headType       int
	clusterOfs     int64
	delta          [2]uint64
	pblk           uint64
	compressedBlks uint64
	nextPackOff    int64
	partialRef     bool
}

func (f *FS) newZmap(in *Inode) (*zmap, error) {
	z := &zmap{f: f, in: in, blkAddr: -1}
	pos := align(in.tailPos(), 8)
	var h [mapHeaderSize]byte
	if err := f.readAt(h[:], pos, fmt.Sprintf("compression map header of inode %d", in.nid)); err != nil {
		return nil, err
	}
	clusterBits := h[7]
	if clusterBits&0x80 != 0 {
		return nil, fmt.Errorf("reading compression map header of inode %d at offset %d: whole file in the packed inode (fragments): %w", in.nid, pos, ErrUnsupported)
	}
	z.advise = binary.LittleEndian.Uint16(h[4:])
	if z.advise&^zAdviseKnown != 0 {
		return nil, fmt.Errorf("reading compression map header of inode %d at offset %d: unknown advise bits %#x: %w", in.nid, pos, z.advise&^zAdviseKnown, ErrUnsupported)
	}
	if z.advise&zAdviseFragment != 0 {
		return nil, fmt.Errorf("reading compression map header of inode %d at offset %d: fragment pcluster: %w", in.nid, pos, ErrUnsupported)
	}
	z.algs[0], z.algs[1] = int(h[6]&15), int(h[6]>>4)
	if clusterBits&0x78 != 0 {
		return nil, fmt.Errorf("reading compression map header of inode %d at offset %d: reserved cluster bits %#x set: %w", in.nid, pos, clusterBits, ErrCorrupt)
	}
	z.lclusterBits = f.bsBits + uint(clusterBits&7)
	if z.advise&(zAdviseBigPcluster1|zAdviseBigPcluster2) != 0 && f.sb.FeatureIncompat&FeatureIncompatBigPcluster == 0 {
		return nil, fmt.Errorf("reading compression map header of inode %d: big pcluster without the superblock feature: %w", in.nid, ErrCorrupt)
	}
	if in.layout == LayoutCompressedCompact && (z.advise&zAdviseBigPcluster1 == 0) != (z.advise&zAdviseBigPcluster2 == 0) {
		return nil, fmt.Errorf("reading compression map header of inode %d: compact indexes with inconsistent big pcluster heads: %w", in.nid, ErrCorrupt)
	}
	lsize := int64(1) << z.lclusterBits
	z.totalLcn = uint64((in.size + lsize - 1) >> z.lclusterBits)
	z.compactBlks = uint64((in.size + f.bs - 1) >> f.bsBits)
	if z.advise&zAdviseInlinePcluster != 0 {
		if f.sb.FeatureIncompat&FeatureIncompatZTailpacking == 0 {
			return nil, fmt.Errorf("reading compression map header of inode %d: inline pcluster without the ztailpacking feature: %w", in.nid, ErrCorrupt)
		}
		z.idataSize = int64(binary.LittleEndian.Uint16(h[2:]))
		if in.size == 0 {
			return nil, fmt.Errorf("reading compression map header of inode %d: inline pcluster in an empty file: %w", in.nid, ErrCorrupt)
		}
		z.ztail = true
		// Find the tail extent: it records where the inline pcluster starts.
		e, err := z.mapAt(in.size-1, true)
		if err != nil {
			return nil, fmt.Errorf("finding the inline tail pcluster: %w", err)
		}
		if e.plen == 0 || (e.pa&(f.bs-1))+e.plen > f.bs {
			return nil, fmt.Errorf("reading inode %d: inline tail pcluster of %d bytes at offset %d crosses a block: %w", in.nid, e.plen, e.pa, ErrCorrupt)
		}
	}
	return z, nil
}

func align(v, a int64) int64 { return (v + a - 1) / a * a }

// readIndex reads n bytes of index data at pos through a one-block cache: mapping an extent reads
// several neighbouring indexes.
func (z *zmap) readIndex(p []byte, pos int64) error {
	bs := z.f.bs
	blk := pos &^ (bs - 1)
	if pos+int64(len(p)) > blk+bs {
		return z.f.readAt(p, pos, fmt.Sprintf("compression index of inode %d", z.in.nid))
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.blkAddr != blk {
		n := bs
		if blk+n > z.f.size {
			n = z.f.size - blk
		}
		if n <= 0 || pos+int64(len(p)) > blk+n {
			return fmt.Errorf("reading compression index of inode %d at offset %d: past the end of the %d-byte image: %w", z.in.nid, pos, z.f.size, ErrCorrupt)
		}
		if z.blk == nil {
			z.blk = make([]byte, bs)
		}
		if err := z.f.readAt(z.blk[:n], blk, fmt.Sprintf("compression index block of inode %d", z.in.nid)); err != nil {
			z.blkAddr = -1
			return err
		}
		z.blkAddr, z.blkLen = blk, n
	}
	if pos+int64(len(p)) > blk+z.blkLen {
		return fmt.Errorf("reading compression index of inode %d at offset %d: past the end of the %d-byte image: %w", z.in.nid, pos, z.f.size, ErrCorrupt)
	}
	copy(p, z.blk[pos-blk:])
	return nil
}

func (z *zmap) corrupt(format string, args ...any) error {
	return fmt.Errorf("reading compression indexes of inode %d: %s: %w", z.in.nid, fmt.Sprintf(format, args...), ErrCorrupt)
}

// load reads the index of logical cluster lcn into m.
func (z *zmap) load(m *recorder, lcn uint64, lookahead bool) error {
	if lcn >= z.totalLcn {
		return z.corrupt("logical cluster %d past the last one (%d)", lcn, z.totalLcn)
	}
	if z.in.layout == LayoutCompressedFull {
		return z.loadFull(m, lcn)
	}
	return z.loadCompact(m, lcn, lookahead)
}

func (z *zmap) loadFull(m *recorder, lcn uint64) error {
	pos := align(z.in.tailPos(), 8) + mapHeaderSize + fullIndexExtra + int64(lcn)*fullIndexSize
	var b [fullIndexSize]byte
	if err := z.readIndex(b[:], pos); err != nil {
		return err
	}
	m.nextPackOff = pos + fullIndexSize
	m.lcn = lcn
	advise := binary.LittleEndian.Uint16(b[0:])
	typ := int(advise & 3)
	switch typ {
	case lclusterNonhead:
		m.clusterOfs = 1 << z.lclusterBits
		d0 := uint64(binary.LittleEndian.Uint16(b[4:]))
		if d0&liD0CBlkCnt != 0 {
			if z.advise&(zAdviseBigPcluster1|zAdviseBigPcluster2) == 0 {
				return z.corrupt("lcluster %d has a block count but the file has no big pclusters", lcn)
			}
			m.compressedBlks = d0 &^ liD0CBlkCnt
			d0 = 1
		}
		m.delta[0] = d0
		m.delta[1] = uint64(binary.LittleEndian.Uint16(b[6:]))
	default:
		if advise&liPartialRef != 0 {
			m.partialRef = true
		}
		m.clusterOfs = int64(binary.LittleEndian.Uint16(b[2:]))
		if m.clusterOfs >= 1<<z.lclusterBits {
			return z.corrupt("lcluster %d at offset %d: cluster offset %d past the cluster size", lcn, pos, m.clusterOfs)
		}
		m.pblk = uint64(binary.LittleEndian.Uint32(b[4:]))
	}
	m.typ = typ
	return nil
}

func (z *zmap) loadCompact(m *recorder, lcn uint64, lookahead bool) error {
	ebase := align(z.in.tailPos(), 8) + mapHeaderSize
	total := z.compactBlks
	initial4b := uint64((32 - ebase%32) / 4)
	if initial4b == 32/4 {
		initial4b = 0
	}
	var compacted2b uint64
	if z.advise&zAdviseCompacted2B != 0 && initial4b < total {
		compacted2b = (total - initial4b) / 16 * 16
	}
	m.lcn = lcn
	pos := ebase
	shift := uint(2)
	switch {
	case lcn < initial4b:
	case lcn-initial4b < compacted2b:
		pos += int64(initial4b) * 4
		lcn -= initial4b
		shift = 1
	default:
		pos += int64(initial4b)*4 + int64(compacted2b)*2
		lcn -= initial4b + compacted2b
	}
	pos += int64(lcn) << shift
	return z.unpackCompact(m, shift, pos, lookahead)
}

// decodeCompacted extracts entry i of a compacted pack: the low lclusterBits bits ("lo": cluster
// offset or delta) and the 2-bit type above them.
func decodeCompacted(pack []byte, lobits, encodebits uint, i int) (lo uint64, typ int) {
	bit := encodebits * uint(i)
	v := binary.LittleEndian.Uint32(pack[bit/8:]) >> (bit & 7)
	return uint64(v & (1<<lobits - 1)), int(v>>lobits) & 3
}

func (z *zmap) unpackCompact(m *recorder, shift uint, pos int64, lookahead bool) error {
	lbits := z.lclusterBits
	var vcnt int
	switch {
	case shift == 2 && lbits <= 14:
		vcnt = 2
	case shift == 1 && lbits == 12:
		vcnt = 16
	default:
		return fmt.Errorf("reading compacted indexes of inode %d: %d-byte packs with 2^%d-byte clusters: %w", z.in.nid, 1<<shift, lbits, ErrUnsupported)
	}
	packSize := int64(vcnt) << shift
	base := pos / packSize * packSize
	pack := make([]byte, packSize)
	if err := z.readIndex(pack, base); err != nil {
		return err
	}
	m.nextPackOff = base + packSize
	bigPcluster := z.advise&zAdviseBigPcluster1 != 0
	encodebits := uint((packSize - 4) * 8 / int64(vcnt))
	i := int((pos - base) >> shift)

	lo, typ := decodeCompacted(pack, lbits, encodebits, i)
	m.typ = typ
	if typ == lclusterNonhead {
		m.clusterOfs = 1 << lbits
		if lookahead {
			m.delta[1] = compactedLookahead(pack, lbits, encodebits, vcnt, i)
		}
		if lo&liD0CBlkCnt != 0 {
			if !bigPcluster {
				return z.corrupt("lcluster %d has a block count but the file has no big pclusters", m.lcn)
			}
			m.compressedBlks = lo &^ liD0CBlkCnt
			m.delta[0] = 1
			return nil
		}
		if i+1 != vcnt {
			m.delta[0] = lo
			return nil
		}
		// The last entry of a pack stores delta[1]; delta[0] comes from the entry before it.
		lo, typ = decodeCompacted(pack, lbits, encodebits, i-1)
		switch {
		case typ != lclusterNonhead:
			lo = 0
		case lo&liD0CBlkCnt != 0:
			lo = 1
		}
		m.delta[0] = lo + 1
		return nil
	}
	m.clusterOfs = int64(lo)
	m.delta[0] = 0
	// The pack stores the block address of its first pcluster; count the pclusters that start
	// before entry i to find this head's.
	var nblk uint64
	if !bigPcluster {
		nblk = 1
		for i > 0 {
			i--
			lo, typ = decodeCompacted(pack, lbits, encodebits, i)
			if typ == lclusterNonhead {
				i -= int(lo)
			}
			if i >= 0 {
				nblk++
			}
		}
	} else {
		for i > 0 {
			i--
			lo, typ = decodeCompacted(pack, lbits, encodebits, i)
			if typ == lclusterNonhead {
				if lo&liD0CBlkCnt != 0 {
					i--
					nblk += lo &^ liD0CBlkCnt
					continue
				}
				if lo <= 1 {
					return z.corrupt("lcluster %d: big pcluster with delta %d", m.lcn, lo)
				}
				i -= int(lo) - 2
				continue
			}
			nblk++
		}
	}
	m.pblk = uint64(binary.LittleEndian.Uint32(pack[packSize-4:])) + nblk
	return nil
}

// compactedLookahead returns the distance from NONHEAD entry i to the next HEAD, scanning the rest
// of the pack; the last entry of a pack stores the remaining distance.
func compactedLookahead(pack []byte, lbits, encodebits uint, vcnt, i int) uint64 {
	var d1, lo uint64
	var typ int
	for ; i < vcnt; i++ {
		lo, typ = decodeCompacted(pack, lbits, encodebits, i)
		if typ != lclusterNonhead {
			return d1
		}
		d1++
	}
	// d1 >= 1 here: entry i itself was counted.
	if lo&liD0CBlkCnt == 0 {
		d1 = d1 + lo - 1
	}
	return d1
}

// lookback walks from m back to the HEAD lcluster of its extent.
func (z *zmap) lookback(m *recorder, dist uint64) (la int64, err error) {
	for m.lcn >= dist {
		lcn := m.lcn - dist
		if err := z.load(m, lcn, false); err != nil {
			return 0, err
		}
		switch m.typ {
		case lclusterNonhead:
			if m.delta[0] == 0 {
				return 0, z.corrupt("lcluster %d: lookback distance 0", lcn)
			}
			dist = m.delta[0]
		case lclusterPlain, lclusterHead1, lclusterHead2:
			m.headType = m.typ
			return int64(lcn)<<z.lclusterBits | m.clusterOfs, nil
		}
	}
	return 0, z.corrupt("lcluster %d: lookback distance %d before the first cluster", m.lcn, dist)
}

// mapExtent returns the whole extent that holds file offset off.
func (z *zmap) mapExtent(off int64) (*zextent, error) {
	e, err := z.mapAt(off, false)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// mapAt follows Linux's z_erofs_do_map_blocks, then always works out the exact end of the extent
// so it can be decompressed whole and cached. findTail is the pass that locates the inline tail
// pcluster of a ztailpacking file.
func (z *zmap) mapAt(off int64, findTail bool) (*zextent, error) {
	in := z.in
	if off < 0 || off >= in.size {
		return nil, fmt.Errorf("mapping offset %d of inode %d (%d bytes): out of range: %w", off, in.nid, in.size, ErrCorrupt)
	}
	lbits := z.lclusterBits
	initialLcn := uint64(off) >> lbits
	endoff := off & (1<<lbits - 1)
	var m recorder
	if err := z.load(&m, initialLcn, false); err != nil {
		return nil, err
	}
	if z.ztail && findTail {
		z.idataOff = m.nextPackOff
	}
	e := &zextent{}
	end := int64(m.lcn+1) << lbits
	fullyMapped := false
	switch m.typ {
	case lclusterPlain, lclusterHead1, lclusterHead2:
		if endoff >= m.clusterOfs {
			m.headType = m.typ
			e.la = int64(m.lcn)<<lbits | m.clusterOfs
			if z.ztail && end > in.size {
				end = in.size
			}
			break
		}
		if m.lcn == 0 {
			return nil, z.corrupt("lcluster 0 starts at cluster offset %d, leaving offset %d unmapped", m.clusterOfs, off)
		}
		end = int64(m.lcn)<<lbits | m.clusterOfs
		fullyMapped = true
		la, err := z.lookback(&m, 1)
		if err != nil {
			return nil, err
		}
		e.la = la
	case lclusterNonhead:
		la, err := z.lookback(&m, m.delta[0])
		if err != nil {
			return nil, err
		}
		e.la = la
	}
	e.headType = m.headType
	e.partial = m.partialRef
	headLcn := m.lcn
	if findTail {
		z.tailHeadLcn = headLcn
	}
	if z.ztail && headLcn == z.tailHeadLcn {
		e.inline = true
		e.pa, e.plen = z.idataOff, z.idataSize
	} else {
		e.pa = int64(m.pblk) << z.f.bsBits
		plen, err := z.compressedLen(&m)
		if err != nil {
			return nil, err
		}
		e.plen = plen
	}
	if !fullyMapped {
		var err error
		if end, err = z.extentEnd(&m, headLcn, e.la); err != nil {
			return nil, err
		}
	}
	e.llen = end - e.la
	switch e.headType {
	case lclusterPlain:
		e.alg = -1
	case lclusterHead2:
		e.alg = z.algs[1]
	default:
		e.alg = z.algs[0]
	}
	if err := z.checkExtent(e, off); err != nil {
		return nil, err
	}
	return e, nil
}

// compressedLen returns the size of the pcluster of the extent whose HEAD m was just read.
func (z *zmap) compressedLen(m *recorder) (int64, error) {
	lbits := z.lclusterBits
	big := (m.headType == lclusterHead1 && z.advise&zAdviseBigPcluster1 != 0) ||
		(m.headType == lclusterHead2 && z.advise&zAdviseBigPcluster2 != 0)
	if !big {
		return 1 << lbits, nil
	}
	if m.compressedBlks == 0 {
		lcn := m.lcn + 1
		if err := z.load(m, lcn, false); err != nil {
			return 0, err
		}
		switch m.typ {
		case lclusterPlain, lclusterHead1, lclusterHead2:
			m.compressedBlks = 1 << (lbits - z.f.bsBits)
		default:
			if m.delta[0] != 1 || m.compressedBlks == 0 {
				return 0, z.corrupt("lcluster %d: no pcluster block count after its head", lcn)
			}
		}
	}
	return int64(m.compressedBlks) << z.f.bsBits, nil
}

// extentEnd follows delta[1] from the extent's HEAD to the next HEAD (or the end of the file).
func (z *zmap) extentEnd(m *recorder, headLcn uint64, la int64) (int64, error) {
	lbits := z.lclusterBits
	lcn := m.lcn
	if lcn < headLcn {
		lcn = headLcn
	}
	for {
		if int64(lcn)<<lbits >= z.in.size {
			return z.in.size, nil
		}
		if err := z.load(m, lcn, true); err != nil {
			return 0, err
		}
		if m.typ != lclusterNonhead {
			if lcn != headLcn {
				break
			}
			m.delta[1] = 1
		}
		if m.delta[1] == 0 {
			break
		}
		lcn += m.delta[1]
	}
	end := int64(lcn)<<lbits + m.clusterOfs
	if end > z.in.size && z.ztail {
		end = z.in.size
	}
	return end, nil
}

// checkExtent validates a mapped extent against the file, the image and the reader's limits.
func (z *zmap) checkExtent(e *zextent, off int64) error {
	switch {
	case e.llen <= 0 || off < e.la || off >= e.la+e.llen:
		return z.corrupt("extent [%d, %d) does not hold offset %d", e.la, e.la+e.llen, off)
	case e.la+e.llen > z.in.size:
		return z.corrupt("extent [%d, %d) runs past the end of the %d-byte file", e.la, e.la+e.llen, z.in.size)
	case e.llen > MaxExtentSize:
		return z.corrupt("extent at offset %d decompresses to %d bytes, more than %d", e.la, e.llen, MaxExtentSize)
	case e.plen <= 0 || e.plen > maxPclusterSize:
		return z.corrupt("pcluster of extent at offset %d has %d bytes", e.la, e.plen)
	case e.pa < 0 || e.pa > z.f.size || e.plen > z.f.size-e.pa:
		return z.corrupt("pcluster of extent at offset %d, image bytes [%d, %d), runs past the end of the %d-byte image", e.la, e.pa, e.pa+e.plen, z.f.size)
	case e.alg == -1 && e.llen > e.plen:
		return z.corrupt("uncompressed pcluster of %d bytes holds a %d-byte extent at offset %d", e.plen, e.llen, e.la)
	case e.alg > algLZ4:
		return fmt.Errorf("reading inode %d: extent at offset %d compressed with %s: %w", z.in.nid, e.la, algName(e.alg), ErrUnsupported)
	}
	return nil
}

// decode reads the pcluster of e and returns its e.llen decompressed bytes.
func (z *zmap) decode(e *zextent) ([]byte, error) {
	f := z.f
	raw, err := z.readPcluster(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, e.llen)
	if e.alg == -1 {
		if z.advise&zAdviseInterlaced != 0 && !e.inline && e.plen >= f.bs {
			// Interlaced: each byte sits at its offset within the block, so the extent's first
			// bytes are at the end of the pcluster's last block.
			start := (e.la&(f.bs-1) + e.plen - f.bs) % e.plen
			n := copy(out, raw[start:])
			copy(out[n:], raw)
		} else {
			copy(out, raw)
		}
		return out, nil
	}
	src := raw
	partial := e.partial
	if f.sb.FeatureIncompat&FeatureIncompatZeroPadding != 0 {
		// The stream is right-aligned: skip the zero padding in front of it (within one block).
		limit := len(src)
		if int64(limit) > f.bs {
			limit = int(f.bs)
		}
		skip := 0
		for skip < limit && src[skip] == 0 {
			skip++
		}
		if skip == limit {
			return nil, lz4Error(errLZ4Truncated, z.in.nid, e.la, e.pa, e.plen, e.llen)
		}
		src = src[skip:]
	} else {
		partial = true
	}
	n, err := decodeLZ4(out, src, partial)
	if err == nil && n != len(out) {
		err = errLZ4Short
	}
	if err != nil {
		return nil, lz4Error(err, z.in.nid, e.la, e.pa, e.plen, e.llen)
	}
	return out, nil
}

// readPcluster returns the compressed bytes of e. When e continues where the previous pcluster
// of this inode ended (a sequential read), it is served from a readahead window.
func (z *zmap) readPcluster(e *zextent) ([]byte, error) {
	f := z.f
	what := fmt.Sprintf("pcluster of inode %d at file offset %d", z.in.nid, e.la)
	raw := make([]byte, e.plen)
	z.raMu.Lock()
	defer z.raMu.Unlock()
	sequential := e.pa == z.raNext && !e.inline
	if !e.inline {
		z.raNext = e.pa + e.plen
	}
	if e.pa >= z.raOff && e.pa+e.plen <= z.raOff+int64(len(z.ra)) {
		copy(raw, z.ra[e.pa-z.raOff:])
		return raw, nil
	}
	if !sequential || e.plen >= readaheadSize {
		if err := f.readAt(raw, e.pa, what); err != nil {
			return nil, err
		}
		return raw, nil
	}
	n := int64(readaheadSize)
	if e.pa+n > f.size {
		n = f.size - e.pa
	}
	if z.ra == nil {
		z.ra = make([]byte, readaheadSize)
	}
	if err := f.readAt(z.ra[:n], e.pa, what); err != nil {
		z.ra = z.ra[:0]
		return nil, err
	}
	z.ra, z.raOff = z.ra[:n], e.pa
	copy(raw, z.ra)
	return raw, nil
}
