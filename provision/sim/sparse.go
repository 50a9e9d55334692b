package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Android sparse image format (libsparse sparse_format.h), as fastboot sends it. This is a small
// applier for the simulator; it checks every header field and bound before writing anything.
const (
	sparseMagic         = 0xed26ff3a
	sparseHeaderSize    = 28
	sparseChunkHdrSize  = 12
	chunkRaw            = 0xcac1
	chunkFill           = 0xcac2
	chunkDontCare       = 0xcac3
	chunkCRC32          = 0xcac4
	maxSparseBlockSize  = 64 << 20
	maxSparseChunkCount = 1 << 24
)

// ErrBadSparse is wrapped by errors about malformed sparse images.
var ErrBadSparse = errors.New("malformed sparse image")

// IsSparse reports whether b starts with the sparse image magic.
func IsSparse(b []byte) bool {
	return len(b) >= 4 && binary.LittleEndian.Uint32(b) == sparseMagic
}

// sparseHeader is the decoded file header.
type sparseHeader struct {
	blockSize   uint32
	totalBlocks uint32
	totalChunks uint32
	fileHdrSize uint16
	chunkHdrSz  uint16
}

func readSparseHeader(r io.ReaderAt, size int64) (sparseHeader, error) {
	var b [sparseHeaderSize]byte
	if size < sparseHeaderSize {
		return sparseHeader{}, fmt.Errorf("reading sparse header: %d bytes: %w", size, ErrBadSparse)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return sparseHeader{}, fmt.Errorf("reading sparse header: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != sparseMagic {
		return sparseHeader{}, fmt.Errorf("reading sparse header: bad magic 0x%08x: %w", le.Uint32(b[0:]), ErrBadSparse)
	}
	if major := le.Uint16(b[4:]); major != 1 {
		return sparseHeader{}, fmt.Errorf("reading sparse header: major version %d, want 1: %w", major, ErrBadSparse)
	}
	h := sparseHeader{fileHdrSize: le.Uint16(b[8:]), chunkHdrSz: le.Uint16(b[10:]), blockSize: le.Uint32(b[12:]),
		totalBlocks: le.Uint32(b[16:]), totalChunks: le.Uint32(b[20:])}
	if h.fileHdrSize < sparseHeaderSize || int64(h.fileHdrSize) > size {
		return h, fmt.Errorf("reading sparse header: header size %d: %w", h.fileHdrSize, ErrBadSparse)
	}
	if h.chunkHdrSz < sparseChunkHdrSize {
		return h, fmt.Errorf("reading sparse header: chunk header size %d: %w", h.chunkHdrSz, ErrBadSparse)
	}
	if h.blockSize == 0 || h.blockSize%4 != 0 || h.blockSize > maxSparseBlockSize {
		return h, fmt.Errorf("reading sparse header: block size %d: %w", h.blockSize, ErrBadSparse)
	}
	if h.totalChunks > maxSparseChunkCount {
		return h, fmt.Errorf("reading sparse header: %d chunks: %w", h.totalChunks, ErrBadSparse)
	}
	return h, nil
}

// applySparse writes the sparse image in r (size bytes) into dst, a partition of partSize bytes,
// chunk by chunk: raw chunks are copied, fill chunks repeat their 4-byte value, don't-care chunks
// leave the partition untouched. Everything is validated before the first write.
func applySparse(dst io.WriterAt, partSize int64, r io.ReaderAt, size int64) error {
	h, err := readSparseHeader(r, size)
	if err != nil {
		return err
	}
	if int64(h.totalBlocks)*int64(h.blockSize) > partSize {
		return fmt.Errorf("sparse image of %d bytes does not fit the %d-byte partition: %w", int64(h.totalBlocks)*int64(h.blockSize), partSize, ErrBadSparse)
	}
	// Two passes over the chunk headers: the first validates everything, the second writes, so a
	// malformed image leaves the partition as it was.
	for pass := 0; pass < 2; pass++ {
		if err := walkSparse(h, r, size, dst, pass == 1); err != nil {
			return err
		}
	}
	return nil
}

func walkSparse(h sparseHeader, r io.ReaderAt, size int64, dst io.WriterAt, write bool) error {
	le := binary.LittleEndian
	off := int64(h.fileHdrSize)
	var block int64
	var buf []byte
	if write {
		buf = make([]byte, max(min(1<<20, int64(h.totalBlocks)*int64(h.blockSize)), 4))
	}
	for i := uint32(0); i < h.totalChunks; i++ {
		var ch [sparseChunkHdrSize]byte
		if off+int64(h.chunkHdrSz) > size {
			return fmt.Errorf("reading sparse chunk %d at offset %d: truncated header: %w", i, off, ErrBadSparse)
		}
		if _, err := r.ReadAt(ch[:], off); err != nil {
			return fmt.Errorf("reading sparse chunk %d at offset %d: %w", i, off, err)
		}
		typ, blocks := le.Uint16(ch[0:]), le.Uint32(ch[4:])
		total := int64(le.Uint32(ch[8:]))
		dataOff, dataLen := off+int64(h.chunkHdrSz), total-int64(h.chunkHdrSz)
		if dataLen < 0 || off+total > size {
			return fmt.Errorf("reading sparse chunk %d at offset %d: total size %d: %w", i, off, total, ErrBadSparse)
		}
		outOff := block * int64(h.blockSize)
		n := int64(blocks) * int64(h.blockSize)
		switch typ {
		case chunkRaw:
			if dataLen != n {
				return fmt.Errorf("reading sparse raw chunk %d at offset %d: %d data bytes for %d blocks: %w", i, off, dataLen, blocks, ErrBadSparse)
			}
		case chunkFill:
			if dataLen != 4 {
				return fmt.Errorf("reading sparse fill chunk %d at offset %d: %d data bytes: %w", i, off, dataLen, ErrBadSparse)
			}
		case chunkDontCare:
			if dataLen != 0 {
				return fmt.Errorf("reading sparse don't-care chunk %d at offset %d: %d data bytes: %w", i, off, dataLen, ErrBadSparse)
			}
		case chunkCRC32:
			if dataLen != 4 || blocks != 0 {
				return fmt.Errorf("reading sparse crc32 chunk %d at offset %d: %w", i, off, ErrBadSparse)
			}
		default:
			return fmt.Errorf("reading sparse chunk %d at offset %d: unknown type 0x%04x: %w", i, off, typ, ErrBadSparse)
		}
		block += int64(blocks)
		if block > int64(h.totalBlocks) {
			return fmt.Errorf("reading sparse chunk %d at offset %d: chunks cover %d blocks, header says %d: %w", i, off, block, h.totalBlocks, ErrBadSparse)
		}
		if write {
			switch typ {
			case chunkRaw:
				for done := int64(0); done < n; {
					c := min(int64(len(buf)), n-done)
					if _, err := r.ReadAt(buf[:c], dataOff+done); err != nil {
						return fmt.Errorf("reading sparse raw chunk %d: %w", i, err)
					}
					if _, err := dst.WriteAt(buf[:c], outOff+done); err != nil {
						return fmt.Errorf("writing sparse raw chunk %d at partition offset %d: %w", i, outOff+done, err)
					}
					done += c
				}
			case chunkFill:
				var word [4]byte
				if _, err := r.ReadAt(word[:], dataOff); err != nil {
					return fmt.Errorf("reading sparse fill chunk %d: %w", i, err)
				}
				fill := buf[:min(int64(len(buf)), n)]
				for j := 0; j < len(fill); j += 4 {
					copy(fill[j:], word[:])
				}
				for done := int64(0); done < n; {
					c := min(int64(len(fill)), n-done)
					if _, err := dst.WriteAt(fill[:c], outOff+done); err != nil {
						return fmt.Errorf("writing sparse fill chunk %d at partition offset %d: %w", i, outOff+done, err)
					}
					done += c
				}
			}
		}
		off += total
	}
	if block != int64(h.totalBlocks) {
		return fmt.Errorf("sparse image chunks cover %d blocks, header says %d: %w", block, h.totalBlocks, ErrBadSparse)
	}
	return nil
}
