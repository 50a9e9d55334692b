package erofs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Copying chunk-based files: mkfs.erofs --chunksize (AOSP's BOARD_EROFS_SHARE_DUP_BLOCKS) stores
// a regular file as an array of chunk indexes after its inode, each the block address of one chunk
// of the file or the null address for a hole; identical chunks of different files (or of one file)
// point at the same blocks. Tree records each such file's chunk size and source block addresses as
// a Chunked, and Write copies every distinct source block range once, writing each file's index
// array again with the new addresses, so the sharing, and the image size, survive a rewrite.

// Chunked describes how a regular file's data is stored chunk-based in the image Tree read it
// from. Write keeps it chunk-based when the Node still has the Data reader Tree gave it; otherwise
// (or when Fallback says why not) the file is written FLAT_PLAIN.
type Chunked struct {
	src       *chunkSource
	data      io.ReaderAt // the Node's Data when Tree made it
	size      int64
	chunkBits uint // log2 of the chunk size in bytes
	indexes   bool // 8-byte chunk indexes (EROFS_CHUNK_FORMAT_INDEXES) rather than 4-byte block maps
	// addrs holds the source block address of each chunk, nullAddr for a hole.
	addrs    []uint32
	fallback string
}

// chunkSource is the image chunks are copied from.
type chunkSource struct {
	r    io.ReaderAt
	size int64
}

// Fallback says why the file cannot be copied chunk-based ("" when it can).
func (c *Chunked) Fallback() string { return c.fallback }

// ChunkSize returns the file's chunk size in bytes.
func (c *Chunked) ChunkSize() int64 { return int64(1) << c.chunkBits }

// Addrs returns the source block address of each chunk of the file; holes are 0xffffffff.
func (c *Chunked) Addrs() []uint32 { return c.addrs }

// maxCopiedChunks bounds the chunk addresses a copied file keeps in memory (4 bytes per chunk:
// 16 MiB for a 16 GiB file of 4 KiB chunks); larger files are written FLAT_PLAIN.
const maxCopiedChunks = 1 << 22

// chunkBlocks returns how many blocks chunk i of the file uses: a whole chunk, or what is left of
// the file for the last one.
func (c *Chunked) chunkBlocks(i int) int64 {
	left := c.size - int64(i)<<c.chunkBits
	return (min(left, c.ChunkSize()) + blkSize - 1) / blkSize
}

// chunkedSource describes the chunk-based inode in for Write to copy. A chunk that points outside
// the image is an error; layouts the copy does not handle give a Chunked whose Fallback says why.
func (f *FS) chunkedSource(ctx context.Context, in *Inode, data io.ReaderAt, src *chunkSource) (*Chunked, error) {
	c := &Chunked{src: src, data: data, size: in.size,
		chunkBits: f.bsBits + uint(in.u&chunkFormatBlkbitsMask), indexes: in.u&chunkFormatIndexes != 0}
	chunks := (in.size + c.ChunkSize() - 1) >> c.chunkBits
	switch {
	case f.bs != blkSize:
		c.fallback = fmt.Sprintf("%d-byte blocks", f.bs)
	case f.sb.ExtraDevices != 0 || len(f.devices) != 0:
		c.fallback = fmt.Sprintf("chunks in an image with %d extra devices", max(int(f.sb.ExtraDevices), len(f.devices)))
	case chunks > maxCopiedChunks:
		c.fallback = fmt.Sprintf("%d chunks", chunks)
	}
	if c.fallback != "" {
		return c, nil
	}
	unit := int64(4)
	if c.indexes {
		unit = 8
	}
	// checkInode bounded the table by the image size; read it in pieces, noticing ctx.
	pos := align(in.tailPos(), unit)
	c.addrs = make([]uint32, chunks)
	buf := make([]byte, 64<<10)
	le := binary.LittleEndian
	for i := int64(0); i < chunks; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(chunks-i, int64(len(buf))/unit)
		b := buf[:k*unit]
		if err := f.readAt(b, pos+i*unit, fmt.Sprintf("chunk indexes %d-%d of inode %d", i, i+k-1, in.nid)); err != nil {
			return nil, err
		}
		for j := int64(0); j < k; j, i = j+1, i+1 {
			e := b[j*unit:]
			blk := le.Uint32(e)
			if c.indexes {
				// No extra devices: the kernel masks the device id to nothing, so only the
				// address counts.
				blk = le.Uint32(e[4:])
			}
			c.addrs[i] = blk
			if blk == nullAddr {
				continue
			}
			start, n := int64(blk)*blkSize, c.chunkBlocks(int(i))*blkSize
			if start > f.size || n > f.size-start {
				return nil, fmt.Errorf("chunk %d (file offset %d) of inode %d: index at offset %d points at block %d, %d bytes past the end of the %d-byte image: %w",
					i, i<<c.chunkBits, in.nid, pos+i*unit, blk, start+n-f.size, f.size, ErrCorrupt)
			}
		}
	}
	return c, nil
}

// usable says why n cannot be written by copying c ("" when it can).
func (c *Chunked) usable() string { return c.fallback }

// format is the inode's i_u for c: the chunk size in blocks and the index form.
func (c *Chunked) format() uint32 {
	v := uint32(c.chunkBits - 12)
	if c.indexes {
		v |= chunkFormatIndexes
	}
	return v
}

// unit is the size of one entry of c's index array.
func (c *Chunked) unit() int64 {
	if c.indexes {
		return 8
	}
	return 4
}

// metaEnd returns where the inode's metadata ends, counted from the inode: after its xattrs come
// padding to the index size and the index array.
func (c *Chunked) metaEnd(ibody int) int64 {
	return align(int64(inodeExtendedSize+ibody), c.unit()) + c.unit()*int64(len(c.addrs))
}

// chunkRun is a range of source blocks copied as one piece to the new image.
type chunkRun struct {
	start, blocks int64 // in the source
	to            int64 // first block in the new image
}

// chunkPlan is where every chunk of every copied file goes: for each source image, the union of
// the block ranges its chunks use, in source order.
type chunkPlan struct {
	runs map[*chunkSource][]chunkRun
	srcs []*chunkSource // in the order the files were met, for a deterministic layout
}

// add records the block ranges c's chunks use.
func (p *chunkPlan) add(c *Chunked) {
	if p.runs == nil {
		p.runs = map[*chunkSource][]chunkRun{}
	}
	if _, ok := p.runs[c.src]; !ok {
		p.srcs = append(p.srcs, c.src)
		p.runs[c.src] = nil
	}
	rs := p.runs[c.src]
	for i, blk := range c.addrs {
		if blk != nullAddr {
			rs = append(rs, chunkRun{start: int64(blk), blocks: c.chunkBlocks(i)})
		}
	}
	p.runs[c.src] = rs
}

// place merges the ranges of each source (overlapping or adjacent ranges become one run, so a
// block several chunks share is copied once) and gives them new blocks from next on. It returns
// the block after the last.
func (p *chunkPlan) place(next int64) (int64, error) {
	for _, s := range p.srcs {
		rs := p.runs[s]
		sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
		var merged []chunkRun
		for _, r := range rs {
			if k := len(merged); k > 0 && r.start <= merged[k-1].start+merged[k-1].blocks {
				m := &merged[k-1]
				m.blocks = max(m.blocks, r.start+r.blocks-m.start)
				continue
			}
			merged = append(merged, r)
		}
		for i := range merged {
			if next > 1<<32-2-merged[i].blocks {
				return 0, errors.New("writing EROFS: image larger than 16 TiB")
			}
			merged[i].to = next
			next += merged[i].blocks
		}
		p.runs[s] = merged
	}
	return next, nil
}

// newAddr returns where source block blk of s went.
func (p *chunkPlan) newAddr(s *chunkSource, blk uint32) uint32 {
	rs := p.runs[s]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].start+rs[i].blocks > int64(blk) })
	return uint32(rs[i].to + int64(blk) - rs[i].start) // add put every chunk's range in a run
}

// index returns c's index array with the new block addresses.
func (p *chunkPlan) index(c *Chunked) []byte {
	unit := c.unit()
	out := make([]byte, unit*int64(len(c.addrs)))
	le := binary.LittleEndian
	for i, blk := range c.addrs {
		if blk != nullAddr {
			blk = p.newAddr(c.src, blk)
		}
		if unit == 8 {
			le.PutUint32(out[int64(i)*8+4:], blk) // device 0, no high address bits
		} else {
			le.PutUint32(out[int64(i)*4:], blk)
		}
	}
	return out
}

// copy copies every run from its source to the new image w.
func (p *chunkPlan) copy(ctx context.Context, w io.WriterAt, buf []byte) error {
	for _, s := range p.srcs {
		for _, r := range p.runs[s] {
			src, n := r.start*blkSize, r.blocks*blkSize
			if src < 0 || src > s.size || n > s.size-src {
				return fmt.Errorf("copying chunks at byte %d (%d bytes): past the end of the %d-byte source image: %w", src, n, s.size, ErrCorrupt)
			}
			err := copyData(ctx, w, r.to*blkSize, io.NewSectionReader(s.r, src, n), n, buf)
			if err != nil {
				if errors.Is(err, ctx.Err()) {
					return err
				}
				return fmt.Errorf("writing EROFS chunks from source byte %d: %w", src, err)
			}
		}
	}
	return nil
}
