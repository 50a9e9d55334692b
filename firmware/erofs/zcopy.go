package erofs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Copying compressed files: Tree describes each compressed file's pclusters and indexes as a
// Compressed, and Write copies those pclusters block for block into the new image (no
// recompression), with the indexes rewritten as full (8-byte) lcluster indexes whose block
// addresses are moved by the distance the pclusters moved. Full indexes are used whatever the
// source had: compact packs are laid out by the inode's byte offset modulo 32, which a rewritten
// inode (inline xattrs instead of shared ones) does not keep.

// Compressed describes how a regular file's data is stored compressed in the image Tree read it
// from. Write copies it as it is when the Node still has the Data reader Tree gave it; otherwise
// (or when Fallback says why not) the file is written decompressed, FLAT_PLAIN.
type Compressed struct {
	img    *comprImage
	data   io.ReaderAt // the Node's Data when Tree made it
	size   int64
	header [mapHeaderSize]byte
	// index holds one full lcluster index per lcluster, with the source's block addresses.
	index []byte
	// fixed are the HEAD lclusters whose block address is not used, so not moved: the inline
	// tail pcluster's, and any past the end of the file.
	fixed map[int64]bool
	u     uint32
	// start and blocks are the source blocks holding every pcluster that is not inline.
	start, blocks int64
	inline        []byte // the inline tail pcluster (ztailpacking)
	fallback      string
}

// Fallback says why the file cannot be copied compressed ("" when it can).
func (c *Compressed) Fallback() string { return c.fallback }

// comprImage is what a copied pcluster needs from its source image: the image itself and the
// superblock fields that say how to decode it.
type comprImage struct {
	r        io.ReaderAt
	size     int64
	incompat uint32  // the source's 0padding, big pcluster/compression configs and ztailpacking bits
	algField [2]byte // superblock bytes 84-85: lz4 max distance, or the algorithm bitmap
	cfgs     []byte  // the compression configuration records that follow the superblock
}

const copiedIncompat = FeatureIncompatZeroPadding | FeatureIncompatComprCfgs | FeatureIncompatZTailpacking

func (a *comprImage) same(b *comprImage) bool {
	return a == b || a.incompat == b.incompat && a.algField == b.algField && string(a.cfgs) == string(b.cfgs)
}

// comprImage reads the superblock fields and compression configs a copied file depends on.
func (f *FS) comprImage() (*comprImage, error) {
	sb := f.sb
	c := &comprImage{r: f.r, size: f.size, incompat: sb.FeatureIncompat & copiedIncompat}
	if sb.FeatureIncompat&FeatureIncompatComprCfgs != 0 {
		binary.LittleEndian.PutUint16(c.algField[:], sb.ComprAlgs)
		off := int64(SuperblockOffset + superblockSize + int(sb.ExtSlots)*16)
		start := off
		for alg := 0; alg < 16; alg++ {
			if sb.ComprAlgs&(1<<alg) == 0 {
				continue
			}
			var lb [2]byte
			if err := f.readAt(lb[:], off, "compression config length"); err != nil {
				return nil, err
			}
			off += 2 + int64(binary.LittleEndian.Uint16(lb[:]))
		}
		// loadComprCfgs bounded every record; the records must also fit in block 0 of the copy.
		if off > blkSize {
			return nil, fmt.Errorf("reading compression configs at offset %d: they end at %d, past the first block: %w", start, off, ErrCorrupt)
		}
		c.cfgs = make([]byte, off-start)
		if err := f.readAt(c.cfgs, start, "compression configs"); err != nil {
			return nil, err
		}
	} else {
		binary.LittleEndian.PutUint16(c.algField[:], sb.LZ4MaxDistance)
	}
	return c, nil
}

// compressedSource describes the compressed inode in (read through z) for Write to copy. Indexes
// or extents that point outside the image are an error; layouts the copy does not handle give a
// Compressed whose Fallback says why.
func (f *FS) compressedSource(ctx context.Context, in *Inode, z *zmap, data io.ReaderAt, img *comprImage) (*Compressed, error) {
	c := &Compressed{img: img, data: data, size: in.size, u: in.u, fixed: map[int64]bool{}}
	switch {
	case f.bs != blkSize:
		c.fallback = fmt.Sprintf("%d-byte blocks", f.bs)
	case z.advise&zAdviseInterlaced != 0:
		c.fallback = "interlaced uncompressed pclusters"
	case in.layout == LayoutCompressedCompact && z.lclusterBits != f.bsBits:
		c.fallback = fmt.Sprintf("compact indexes of 2^%d-byte lclusters", z.lclusterBits)
	case z.totalLcn > maxCopiedLclusters:
		c.fallback = fmt.Sprintf("%d lclusters", z.totalLcn)
	}
	if c.fallback != "" {
		return c, nil
	}
	if err := f.readAt(c.header[:], align(in.tailPos(), 8), fmt.Sprintf("compression map header of inode %d", in.nid)); err != nil {
		return nil, err
	}
	adv := binary.LittleEndian.Uint16(c.header[4:]) &^ zAdviseCompacted2B
	binary.LittleEndian.PutUint16(c.header[4:], adv)

	// The pclusters, extent by extent, as a reader finds them.
	lo, hi, sum := int64(-1), int64(0), int64(0)
	for off, extents := int64(0), uint64(0); off < in.size; extents++ {
		if extents%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if extents > z.totalLcn {
			// Every extent starts at its own HEAD lcluster.
			return nil, z.corrupt("more extents than the %d lclusters", z.totalLcn)
		}
		e, err := z.mapAt(off, false)
		if err != nil {
			return nil, err
		}
		if e.alg != -1 && e.alg != algLZ4 {
			c.fallback = algName(e.alg) + " compression"
			return c, nil
		}
		if !e.inline {
			if e.pa&(f.bs-1) != 0 {
				return nil, z.corrupt("pcluster of extent at offset %d starts at byte %d, inside a block", e.la, e.pa)
			}
			if lo < 0 || e.pa < lo {
				lo = e.pa
			}
			hi = max(hi, e.pa+e.plen)
			sum += e.plen
		}
		off = e.la + e.llen
	}
	if lo >= 0 {
		// Shared pclusters (sum larger) are fine: the range is copied as one piece. Gaps would copy
		// other files' blocks too, so such a file is written decompressed instead.
		if hi-lo > sum {
			c.fallback = fmt.Sprintf("pclusters spread over %d blocks for %d blocks of data", (hi-lo)>>f.bsBits, sum>>f.bsBits)
			return c, nil
		}
		c.start, c.blocks = lo>>f.bsBits, (hi-lo)>>f.bsBits
	}
	if z.ztail {
		c.fixed[int64(z.tailHeadLcn)] = true
		if z.idataSize > blkSize-32 {
			c.fallback = fmt.Sprintf("inline tail pcluster of %d bytes", z.idataSize)
			return c, nil
		}
		c.inline = make([]byte, z.idataSize)
		if err := f.readAt(c.inline, z.idataOff, fmt.Sprintf("inline tail pcluster of inode %d", in.nid)); err != nil {
			return nil, err
		}
	}

	// Every lcluster index, decoded (compact packs included) and encoded again as a full index.
	c.index = make([]byte, z.totalLcn*fullIndexSize)
	le := binary.LittleEndian
	for lcn := uint64(0); lcn < z.totalLcn; lcn++ {
		if lcn%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var m recorder
		if err := z.load(&m, lcn, true); err != nil {
			return nil, err
		}
		b := c.index[lcn*fullIndexSize:]
		advise := uint16(m.typ)
		if m.partialRef {
			advise |= liPartialRef
		}
		le.PutUint16(b, advise)
		if m.typ == lclusterNonhead {
			d0 := m.delta[0]
			if m.compressedBlks != 0 {
				d0 = liD0CBlkCnt | m.compressedBlks
			}
			if d0 > 0xffff || m.delta[1] > 0xffff || m.compressedBlks >= liD0CBlkCnt {
				return nil, z.corrupt("lcluster %d: deltas %d/%d (block count %d) too large for an index", lcn, m.delta[0], m.delta[1], m.compressedBlks)
			}
			le.PutUint16(b[4:], uint16(d0))
			le.PutUint16(b[6:], uint16(m.delta[1]))
			continue
		}
		le.PutUint16(b[2:], uint16(m.clusterOfs))
		le.PutUint32(b[4:], uint32(m.pblk))
		if c.fixed[int64(lcn)] || int64(lcn)<<z.lclusterBits+m.clusterOfs >= in.size {
			// The inline pcluster's head, or a head past the end of the file (erofs-utils leaves
			// one there when the last extent ends in the lcluster before): addresses not used.
			c.fixed[int64(lcn)] = true
			continue
		}
		if blk := int64(m.pblk); c.blocks == 0 || blk < c.start || blk >= c.start+c.blocks {
			c.fallback = fmt.Sprintf("lcluster %d points at block %d, outside the file's pclusters", lcn, blk)
			return c, nil
		}
	}
	return c, nil
}

// maxCopiedLclusters bounds the index a copied file keeps in memory (8 bytes per lcluster: 2 MiB
// for a 1 GiB file); larger files are written decompressed.
const maxCopiedLclusters = 1 << 20

// usable says why n cannot be written by copying c ("" when it can), given the image-wide
// compression settings img already chosen (nil when none yet).
func (c *Compressed) usable(img *comprImage) string {
	switch {
	case c.fallback != "":
		return c.fallback
	case img != nil && !img.same(c.img):
		return "compressed with other settings than the files before it"
	}
	return ""
}

// metaLayout returns where the inode's metadata ends, counted from the inode: after its xattrs
// come padding to 8, the map header, the 8 bytes Linux skips, the indexes and the inline tail
// pcluster, which starts at tailAt.
func (c *Compressed) metaLayout(ibody int) (end, tailAt int64) {
	hdr := align(int64(inodeExtendedSize+ibody), 8)
	tailAt = hdr + mapHeaderSize + fullIndexExtra + int64(len(c.index))
	return tailAt + int64(len(c.inline)), tailAt
}

// meta returns the bytes from the map header to the end of the inline tail pcluster, with the
// block addresses of the indexes moved so that source block start lands on newStart.
func (c *Compressed) meta(newStart int64) []byte {
	out := make([]byte, 0, mapHeaderSize+fullIndexExtra+len(c.index)+len(c.inline))
	out = append(out, c.header[:]...)
	out = append(out, make([]byte, fullIndexExtra)...)
	idx := append([]byte(nil), c.index...)
	le := binary.LittleEndian
	delta := newStart - c.start
	for lcn := 0; lcn*fullIndexSize < len(idx); lcn++ {
		b := idx[lcn*fullIndexSize:]
		if int(le.Uint16(b)&3) == lclusterNonhead || c.fixed[int64(lcn)] {
			continue
		}
		le.PutUint32(b[4:], uint32(int64(le.Uint32(b[4:]))+delta))
	}
	out = append(out, idx...)
	return append(out, c.inline...)
}

// copyBlocks copies the file's pclusters from the source image to block newStart of w.
func (c *Compressed) copyBlocks(ctx context.Context, w io.WriterAt, newStart int64, buf []byte) error {
	src, n := c.start*blkSize, c.blocks*blkSize
	if src < 0 || src > c.img.size || n > c.img.size-src {
		return fmt.Errorf("copying pclusters at byte %d (%d bytes): past the end of the %d-byte source image: %w", src, n, c.img.size, ErrCorrupt)
	}
	err := copyData(ctx, w, newStart*blkSize, io.NewSectionReader(c.img.r, src, n), n, buf)
	if err != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("copying pclusters from source byte %d: %w", src, err)
	}
	return err
}
