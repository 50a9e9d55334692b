package fastboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/provkit/provkit/firmware/sparse"
)

// Images larger than max-download-size are sent as several standalone sparse images ("pieces"),
// each covering a range of output blocks, as libsparse's resparse does. The input's chunks come
// from firmware/sparse, which validates the whole chunk index when it opens the image.
const (
	sparseMagic      = sparse.Magic
	sparseHeaderSize = sparse.HeaderSize
	chunkHeaderSize  = sparse.ChunkHeaderSize
	chunkRaw         = sparse.ChunkRaw
	chunkFill        = sparse.ChunkFill
	chunkDontCare    = sparse.ChunkDontCare
	chunkCRC32       = sparse.ChunkCRC32
)

// IsSparse reports whether the image starts with the sparse magic.
func IsSparse(r io.ReaderAt) bool { return sparse.IsSparse(r) }

// chunk is one sparse chunk as read from the source: where its data lies, not the data.
type chunk struct {
	typ     uint16
	blocks  int64 // output blocks it covers
	dataOff int64 // offset of its data in the source
	fill    [4]byte
}

// chunkSource walks an image's chunks in order. A raw image is one virtual raw chunk (padded with
// zeros to whole blocks).
type chunkSource struct {
	blockSize   uint32
	totalBlocks uint32
	chunks      []chunk
	idx         int   // next chunk
	outBlocks   int64 // blocks covered before chunk idx
}

func newChunkSource(r io.ReaderAt, size int64, blockSize uint32) (*chunkSource, error) {
	if !sparse.IsSparse(r) {
		blocks := (size + int64(blockSize) - 1) / int64(blockSize)
		if blocks > 0xffffffff {
			return nil, fmt.Errorf("raw image of %d bytes has too many %d-byte blocks for a sparse image", size, blockSize)
		}
		return &chunkSource{blockSize: blockSize, totalBlocks: uint32(blocks),
			chunks: []chunk{{typ: chunkRaw, blocks: blocks}}}, nil
	}
	im, err := sparse.Open(r, size)
	if err != nil {
		return nil, err
	}
	h := im.Header()
	src := &chunkSource{blockSize: h.BlockSize, totalBlocks: h.TotalBlocks}
	for _, c := range im.Chunks() {
		if c.Type == chunkCRC32 {
			continue // checksums of the whole image mean nothing for a piece; dropped
		}
		ch := chunk{typ: c.Type, blocks: int64(c.Blocks), dataOff: c.DataOffset}
		binary.LittleEndian.PutUint32(ch.fill[:], c.Value)
		src.chunks = append(src.chunks, ch)
	}
	return src, nil
}

// next returns the next chunk, io.EOF after the last.
func (s *chunkSource) next() (chunk, error) {
	if s.idx >= len(s.chunks) {
		return chunk{}, io.EOF
	}
	c := s.chunks[s.idx]
	s.idx++
	s.outBlocks += c.blocks
	return c, nil
}

// piece is one sparse image sent in one download: it covers output blocks [start, end) with the
// source's chunks from chunk number firstIdx on; raw chunks are cut at the piece's block bounds.
type piece struct {
	start, end int64
	firstIdx   int   // index of the first source chunk (in chunkSource.chunks)
	firstOut   int64 // output blocks covered before firstIdx
	size       int64 // bytes of the piece's sparse image
}

// planPieces splits the image into sparse pieces of at most max bytes each.
func planPieces(src *chunkSource, max int64) ([]piece, error) {
	bs := int64(src.blockSize)
	const overhead = sparseHeaderSize + 2*chunkHeaderSize // file header, leading and trailing don't-care
	if max < overhead+chunkHeaderSize+bs {
		return nil, fmt.Errorf("max-download-size %d is too small for one %d-byte block in a sparse image", max, bs)
	}
	var pieces []piece
	cur := piece{start: 0, firstIdx: 0, size: overhead}
	pos := int64(0) // output block reached
	for {
		idx, outBefore := src.idx, src.outBlocks
		c, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		done := int64(0) // blocks of c already placed in earlier pieces
		for done < c.blocks || c.blocks == 0 {
			need := int64(chunkHeaderSize)
			switch c.typ {
			case chunkRaw:
				need += bs // at least one block
			case chunkFill:
				need += 4
			}
			if cur.size+need > max {
				cur.end = pos
				pieces = append(pieces, cur)
				cur = piece{start: pos, firstIdx: idx, firstOut: outBefore, size: overhead}
			}
			take := c.blocks - done
			if c.typ == chunkRaw {
				fit := (max - cur.size - chunkHeaderSize) / bs
				take = min(take, fit)
				cur.size += chunkHeaderSize + take*bs
			} else {
				cur.size += need
			}
			done += take
			pos += take
			if c.blocks == 0 {
				break
			}
		}
	}
	cur.end = pos
	if cur.end > cur.start || len(pieces) == 0 {
		pieces = append(pieces, cur)
	}
	return pieces, nil
}

// writePiece writes piece p of the image as a standalone sparse image and returns its size. With a
// nil w it only computes the size, reading no image data.
func writePiece(w io.Writer, r io.ReaderAt, size int64, blockSize uint32, p piece) (int64, error) {
	src, err := newChunkSource(r, size, blockSize)
	if err != nil {
		return 0, err
	}
	src.idx, src.outBlocks = p.firstIdx, p.firstOut
	bs := int64(src.blockSize)
	type out struct {
		c           chunk
		from, count int64 // blocks of c: [from, from+count)
	}
	// First pass over the piece's chunks: count them (the header needs the number).
	var chunks int64
	if p.start > 0 {
		chunks++
	}
	if p.end < int64(src.totalBlocks) {
		chunks++
	}
	walk := func(fn func(o out) error) error {
		s := *src
		pos := p.firstOut
		for pos < p.end || (pos == p.end && p.start == p.end) {
			c, err := s.next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if c.typ == chunkCRC32 || c.blocks == 0 {
				continue
			}
			lo, hi := max(pos, p.start), min(pos+c.blocks, p.end)
			if hi > lo {
				if err := fn(out{c: c, from: lo - pos, count: hi - lo}); err != nil {
					return err
				}
			}
			pos += c.blocks
		}
		return nil
	}
	if err := walk(func(out) error { chunks++; return nil }); err != nil {
		return 0, err
	}
	cw := &countWriter{w: w}
	le := binary.LittleEndian
	var hdr [sparseHeaderSize]byte
	le.PutUint32(hdr[0:], sparseMagic)
	le.PutUint16(hdr[4:], 1)
	le.PutUint16(hdr[6:], 0)
	le.PutUint16(hdr[8:], sparseHeaderSize)
	le.PutUint16(hdr[10:], chunkHeaderSize)
	le.PutUint32(hdr[12:], src.blockSize)
	le.PutUint32(hdr[16:], src.totalBlocks)
	le.PutUint32(hdr[20:], uint32(chunks))
	if _, err := cw.Write(hdr[:]); err != nil {
		return cw.n, err
	}
	chunkHdr := func(typ uint16, blocks, total int64) error {
		var b [chunkHeaderSize]byte
		le.PutUint16(b[0:], typ)
		le.PutUint32(b[4:], uint32(blocks))
		le.PutUint32(b[8:], uint32(total))
		_, err := cw.Write(b[:])
		return err
	}
	if p.start > 0 {
		if err := chunkHdr(chunkDontCare, p.start, chunkHeaderSize); err != nil {
			return cw.n, err
		}
	}
	err = walk(func(o out) error {
		switch o.c.typ {
		case chunkDontCare:
			return chunkHdr(chunkDontCare, o.count, chunkHeaderSize)
		case chunkFill:
			if err := chunkHdr(chunkFill, o.count, chunkHeaderSize+4); err != nil {
				return err
			}
			_, err := cw.Write(o.c.fill[:])
			return err
		}
		if err := chunkHdr(chunkRaw, o.count, chunkHeaderSize+o.count*bs); err != nil {
			return err
		}
		from := o.c.dataOff + o.from*bs
		n := o.count * bs
		// A raw source image is padded with zeros up to whole blocks.
		avail := max(0, min(n, size-from))
		if cw.w == nil {
			cw.n += n
			return nil
		}
		if _, err := io.Copy(cw, io.NewSectionReader(r, from, avail)); err != nil {
			return fmt.Errorf("reading image data at offset %d: %w", from, err)
		}
		if pad := n - avail; pad > 0 {
			if _, err := cw.Write(make([]byte, pad)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return cw.n, err
	}
	if p.end < int64(src.totalBlocks) {
		if err := chunkHdr(chunkDontCare, int64(src.totalBlocks)-p.end, chunkHeaderSize); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.w == nil {
		c.n += int64(len(p))
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
