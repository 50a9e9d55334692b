package fastboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Android sparse image format (system/core/libsparse/sparse_format.h): a 28-byte file header, then
// chunks, each a 12-byte header and its data.
const (
	sparseMagic      = 0xed26ff3a
	sparseHeaderSize = 28
	chunkHeaderSize  = 12
	chunkRaw         = 0xcac1
	chunkFill        = 0xcac2
	chunkDontCare    = 0xcac3
	chunkCRC32       = 0xcac4
)

type sparseHeader struct {
	blockSize   uint32
	totalBlocks uint32
	totalChunks uint32
	hdrSize     int64 // file header size as written (>= 28)
	chunkHdr    int64 // chunk header size as written (>= 12)
}

// IsSparse reports whether the image starts with the sparse magic.
func IsSparse(r io.ReaderAt) bool {
	var m [4]byte
	_, err := r.ReadAt(m[:], 0)
	return err == nil && binary.LittleEndian.Uint32(m[:]) == sparseMagic
}

func readSparseHeader(r io.ReaderAt, size int64) (sparseHeader, error) {
	var b [sparseHeaderSize]byte
	if size < sparseHeaderSize {
		return sparseHeader{}, fmt.Errorf("sparse header: image is %d bytes, shorter than the header", size)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return sparseHeader{}, fmt.Errorf("reading the sparse header: %w", err)
	}
	le := binary.LittleEndian
	h := sparseHeader{
		blockSize:   le.Uint32(b[12:]),
		totalBlocks: le.Uint32(b[16:]),
		totalChunks: le.Uint32(b[20:]),
		hdrSize:     int64(le.Uint16(b[8:])),
		chunkHdr:    int64(le.Uint16(b[10:])),
	}
	switch {
	case le.Uint32(b[0:]) != sparseMagic:
		return h, fmt.Errorf("sparse header at offset 0: bad magic %#x", le.Uint32(b[0:]))
	case le.Uint16(b[4:]) != 1:
		return h, fmt.Errorf("sparse header at offset 4: major version %d, want 1", le.Uint16(b[4:]))
	case h.hdrSize < sparseHeaderSize || h.chunkHdr < chunkHeaderSize:
		return h, fmt.Errorf("sparse header at offset 8: header sizes %d/%d are too small", h.hdrSize, h.chunkHdr)
	case h.blockSize == 0 || h.blockSize%4 != 0 || h.blockSize > 1<<24:
		return h, fmt.Errorf("sparse header at offset 12: block size %d is not a multiple of 4 in (0, 16 MiB]", h.blockSize)
	case int64(h.totalChunks) > (size-h.hdrSize)/h.chunkHdr+1:
		return h, fmt.Errorf("sparse header at offset 20: %d chunks cannot fit in %d bytes", h.totalChunks, size)
	}
	return h, nil
}

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
	r         io.ReaderAt
	size      int64
	h         sparseHeader
	raw       bool
	idx       uint32
	off       int64 // file offset of the next chunk header
	outBlocks int64 // blocks covered so far
}

func newChunkSource(r io.ReaderAt, size int64, blockSize uint32) (*chunkSource, error) {
	if IsSparse(r) {
		h, err := readSparseHeader(r, size)
		if err != nil {
			return nil, err
		}
		return &chunkSource{r: r, size: size, h: h, off: h.hdrSize}, nil
	}
	blocks := (size + int64(blockSize) - 1) / int64(blockSize)
	if blocks > 0xffffffff {
		return nil, fmt.Errorf("raw image of %d bytes has too many %d-byte blocks for a sparse image", size, blockSize)
	}
	return &chunkSource{r: r, size: size, raw: true, h: sparseHeader{blockSize: blockSize, totalBlocks: uint32(blocks), totalChunks: 1, hdrSize: sparseHeaderSize, chunkHdr: chunkHeaderSize}}, nil
}

// next returns the next chunk, io.EOF after the last.
func (s *chunkSource) next() (chunk, error) {
	if s.idx >= s.h.totalChunks {
		if s.outBlocks != int64(s.h.totalBlocks) {
			return chunk{}, fmt.Errorf("sparse image: chunks cover %d blocks, header says %d", s.outBlocks, s.h.totalBlocks)
		}
		return chunk{}, io.EOF
	}
	if s.raw {
		s.idx++
		s.outBlocks = int64(s.h.totalBlocks)
		return chunk{typ: chunkRaw, blocks: int64(s.h.totalBlocks), dataOff: 0}, nil
	}
	var b [chunkHeaderSize]byte
	if s.off+s.h.chunkHdr > s.size {
		return chunk{}, fmt.Errorf("sparse chunk %d at offset %d: header runs past the end (%d bytes)", s.idx, s.off, s.size)
	}
	if _, err := s.r.ReadAt(b[:], s.off); err != nil {
		return chunk{}, fmt.Errorf("reading sparse chunk %d at offset %d: %w", s.idx, s.off, err)
	}
	le := binary.LittleEndian
	c := chunk{typ: le.Uint16(b[0:]), blocks: int64(le.Uint32(b[4:])), dataOff: s.off + s.h.chunkHdr}
	total := int64(le.Uint32(b[8:]))
	bs := int64(s.h.blockSize)
	var want int64
	switch c.typ {
	case chunkRaw:
		want = s.h.chunkHdr + c.blocks*bs
	case chunkFill, chunkCRC32:
		want = s.h.chunkHdr + 4
	case chunkDontCare:
		want = s.h.chunkHdr
	default:
		return chunk{}, fmt.Errorf("sparse chunk %d at offset %d: unknown type %#x", s.idx, s.off, c.typ)
	}
	if total != want {
		return chunk{}, fmt.Errorf("sparse chunk %d at offset %d: total size %d, want %d for type %#x", s.idx, s.off, total, want, c.typ)
	}
	if s.off+total > s.size {
		return chunk{}, fmt.Errorf("sparse chunk %d at offset %d: %d bytes run past the end of the image (%d bytes)", s.idx, s.off, total, s.size)
	}
	if c.typ == chunkFill {
		if _, err := s.r.ReadAt(c.fill[:], c.dataOff); err != nil {
			return chunk{}, fmt.Errorf("reading sparse fill chunk %d at offset %d: %w", s.idx, s.off, err)
		}
	}
	if c.typ == chunkCRC32 {
		c.blocks = 0
	}
	if s.outBlocks+c.blocks > int64(s.h.totalBlocks) {
		return chunk{}, fmt.Errorf("sparse chunk %d at offset %d: covers blocks past the image's %d", s.idx, s.off, s.h.totalBlocks)
	}
	s.idx++
	s.off += total
	s.outBlocks += c.blocks
	return c, nil
}

// piece is one sparse image sent in one download: it covers output blocks [start, end) with the
// source's chunks from chunk number firstChunk (at file offset firstOff), the first of which starts
// skip blocks in; the last raw chunk is cut after lastTake blocks when cut is set.
type piece struct {
	start, end int64
	firstIdx   uint32
	firstOff   int64
	firstOut   int64 // output blocks covered before firstIdx
	size       int64 // bytes of the piece's sparse image
}

// planPieces splits the image into sparse pieces of at most max bytes each.
func planPieces(src *chunkSource, max int64) ([]piece, error) {
	bs := int64(src.h.blockSize)
	const overhead = sparseHeaderSize + 2*chunkHeaderSize // file header, leading and trailing don't-care
	if max < overhead+chunkHeaderSize+bs {
		return nil, fmt.Errorf("max-download-size %d is too small for one %d-byte block in a sparse image", max, bs)
	}
	var pieces []piece
	cur := piece{start: 0, firstIdx: 0, firstOff: src.off, size: overhead}
	pos := int64(0) // output block reached
	for {
		idx, off, outBefore := src.idx, src.off, src.outBlocks
		c, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if c.typ == chunkCRC32 {
			continue // checksums of the whole image mean nothing for a piece; dropped
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
				cur = piece{start: pos, firstIdx: idx, firstOff: off, firstOut: outBefore, size: overhead}
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
	src.idx, src.off, src.outBlocks = p.firstIdx, p.firstOff, p.firstOut
	bs := int64(src.h.blockSize)
	type out struct {
		c           chunk
		from, count int64 // blocks of c: [from, from+count)
	}
	// First pass over the piece's chunks: count them (the header needs the number).
	var chunks int64
	if p.start > 0 {
		chunks++
	}
	if p.end < int64(src.h.totalBlocks) {
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
	le.PutUint32(hdr[12:], src.h.blockSize)
	le.PutUint32(hdr[16:], src.h.totalBlocks)
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
	if p.end < int64(src.h.totalBlocks) {
		if err := chunkHdr(chunkDontCare, int64(src.h.totalBlocks)-p.end, chunkHeaderSize); err != nil {
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
