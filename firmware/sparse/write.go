package sparse

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// WriteOptions tunes Write. The zero value writes what img2simg writes.
type WriteOptions struct {
	// DontCareZeros writes all-zero blocks as DONT_CARE chunks (nothing stored, reads as zeros)
	// instead of FILL chunks of zero. Use it for images whose holes need not be written when
	// flashed.
	DontCareZeros bool
	// CRC appends a CRC32 chunk holding the CRC-32 of the whole expanded image.
	CRC bool
}

// run is a stretch of blocks that becomes one chunk.
type run struct {
	typ    uint16
	start  uint32
	blocks uint32
	fill   uint32
}

// Write writes a sparse image of the raw image r (size bytes) to w, with blocks of blockSize bytes.
// Like img2simg, it reads every block; a whole block made of one repeated 32-bit word becomes a FILL
// chunk, runs of such blocks with the same word and runs of other blocks are merged into one chunk
// each. A size that is not a multiple of blockSize is padded with zeros to a whole block, as img2simg
// does. It reads r twice: once to classify blocks, once to copy RAW data.
func Write(w io.Writer, r io.ReaderAt, size int64, blockSize uint32, opts WriteOptions) error {
	if blockSize == 0 || blockSize%4 != 0 {
		return fmt.Errorf("writing sparse image: block size %d is not a positive multiple of 4", blockSize)
	}
	if size < 0 {
		return fmt.Errorf("writing sparse image: negative size %d", size)
	}
	bs := int64(blockSize)
	nblocks := (size + bs - 1) / bs
	if nblocks > 0xFFFFFFFF {
		return fmt.Errorf("writing sparse image: %d bytes make %d blocks of %d, more than the format's 2^32-1", size, nblocks, bs)
	}
	if nblocks == 0 {
		return fmt.Errorf("writing sparse image: the raw image is empty (simg2img rejects sparse images of zero blocks)")
	}
	// Largest RAW chunk whose total_sz still fits in 32 bits.
	maxRaw := uint32((0xFFFFFFFF - ChunkHeaderSize) / bs)

	// Pass 1: classify blocks and compute the image CRC.
	runs, crc, err := classify(r, size, bs, nblocks, maxRaw, opts)
	if err != nil {
		return err
	}

	bw := bufio.NewWriterSize(w, int(min(256<<10, nblocks*bs+HeaderSize+64)))
	chunks := uint32(len(runs))
	if opts.CRC {
		chunks++
	}
	var hdr [HeaderSize]byte
	le := binary.LittleEndian
	le.PutUint32(hdr[0:], Magic)
	le.PutUint16(hdr[4:], MajorVersion)
	le.PutUint16(hdr[6:], 0)
	le.PutUint16(hdr[8:], HeaderSize)
	le.PutUint16(hdr[10:], ChunkHeaderSize)
	le.PutUint32(hdr[12:], blockSize)
	le.PutUint32(hdr[16:], uint32(nblocks))
	le.PutUint32(hdr[20:], chunks)
	le.PutUint32(hdr[24:], 0)
	if _, err := bw.Write(hdr[:]); err != nil {
		return fmt.Errorf("writing sparse header: %w", err)
	}

	buf := make([]byte, min(max(copyBufSize/bs, 1), nblocks)*bs)
	var ch [ChunkHeaderSize + 4]byte
	for i, rn := range runs {
		le.PutUint16(ch[0:], rn.typ)
		le.PutUint16(ch[2:], 0)
		le.PutUint32(ch[4:], rn.blocks)
		n := ChunkHeaderSize
		switch rn.typ {
		case ChunkRaw:
			le.PutUint32(ch[8:], uint32(ChunkHeaderSize+int64(rn.blocks)*bs))
		case ChunkFill:
			le.PutUint32(ch[8:], ChunkHeaderSize+4)
			le.PutUint32(ch[12:], rn.fill)
			n += 4
		case ChunkDontCare:
			le.PutUint32(ch[8:], ChunkHeaderSize)
		}
		if _, err := bw.Write(ch[:n]); err != nil {
			return fmt.Errorf("writing sparse chunk %d header: %w", i, err)
		}
		if rn.typ != ChunkRaw {
			continue
		}
		off := int64(rn.start) * bs
		end := off + int64(rn.blocks)*bs
		for off < end {
			m := min(end-off, int64(len(buf)))
			p := buf[:m]
			avail := min(m, max(size-off, 0))
			if avail > 0 {
				if err := readFull(r, p[:avail], off); err != nil {
					return fmt.Errorf("reading raw image at offset %d: %w", off, err)
				}
			}
			clear(p[avail:]) // padding of the last partial block
			if _, err := bw.Write(p); err != nil {
				return fmt.Errorf("writing sparse chunk %d data: %w", i, err)
			}
			off += m
		}
	}
	if opts.CRC {
		le.PutUint16(ch[0:], ChunkCRC32)
		le.PutUint16(ch[2:], 0)
		le.PutUint32(ch[4:], 0)
		le.PutUint32(ch[8:], ChunkHeaderSize+4)
		le.PutUint32(ch[12:], crc)
		if _, err := bw.Write(ch[:]); err != nil {
			return fmt.Errorf("writing sparse CRC32 chunk: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing sparse image: %w", err)
	}
	return nil
}

func classify(r io.ReaderAt, size, bs, nblocks int64, maxRaw uint32, opts WriteOptions) ([]run, uint32, error) {
	var runs []run
	var crc uint32
	per := min(max(1, copyBufSize/bs), nblocks)
	buf := make([]byte, per*bs)
	add := func(typ uint16, block uint32, fill uint32) {
		if k := len(runs) - 1; k >= 0 {
			last := &runs[k]
			if last.typ == typ && last.start+last.blocks == block &&
				(typ != ChunkFill || last.fill == fill) &&
				(typ != ChunkRaw || last.blocks < maxRaw) && last.blocks < 0xFFFFFFFF {
				last.blocks++
				return
			}
		}
		runs = append(runs, run{typ: typ, start: block, blocks: 1, fill: fill})
	}
	for b := int64(0); b < nblocks; b += per {
		off := b * bs
		n := min(int64(len(buf)), size-off)
		p := buf[:n]
		if err := readFull(r, p, off); err != nil {
			return nil, 0, fmt.Errorf("reading raw image at offset %d: %w", off, err)
		}
		for i := int64(0); i < n; i += bs {
			blk := p[i:min(i+bs, n)]
			block := uint32(b + i/bs)
			if int64(len(blk)) < bs {
				// The last partial block is always data, padded with zeros (as img2simg).
				if opts.CRC {
					crc = crc32.Update(crc, crc32.IEEETable, blk)
					crc = crc32.Update(crc, crc32.IEEETable, make([]byte, bs-int64(len(blk))))
				}
				add(ChunkRaw, block, 0)
				continue
			}
			if opts.CRC {
				crc = crc32.Update(crc, crc32.IEEETable, blk)
			}
			if bytes.Equal(blk[4:], blk[:len(blk)-4]) { // period 4: one repeated word
				v := binary.LittleEndian.Uint32(blk)
				if v == 0 && opts.DontCareZeros {
					add(ChunkDontCare, block, 0)
				} else {
					add(ChunkFill, block, v)
				}
				continue
			}
			add(ChunkRaw, block, 0)
		}
	}
	return runs, crc, nil
}
