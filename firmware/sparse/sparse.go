package sparse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sort"
)

// Format constants from libsparse's sparse_format.h.
const (
	Magic = 0xED26FF3A

	MajorVersion = 1

	// HeaderSize and ChunkHeaderSize are the sizes of version 1.0 headers; files may declare
	// larger ones.
	HeaderSize      = 28
	ChunkHeaderSize = 12

	ChunkRaw      uint16 = 0xCAC1
	ChunkFill     uint16 = 0xCAC2
	ChunkDontCare uint16 = 0xCAC3
	ChunkCRC32    uint16 = 0xCAC4
)

// MaxChunks bounds the number of chunks Open indexes (24 bytes of memory each). img2simg writes at
// most one chunk per block, so a 16 GiB image of 4 KiB blocks stays below it.
const MaxChunks = 1 << 22

// ErrNotSparse is returned by Open when the input does not start with the sparse magic.
var ErrNotSparse = errors.New("not an Android sparse image (bad magic)")

// ErrCorrupt marks every structural error in a sparse image: a header field out of range, a chunk
// whose sizes disagree, a truncated file. Test with errors.Is.
var ErrCorrupt = errors.New("corrupt sparse image")

// ErrChecksum is returned when a CRC32 chunk does not match the data before it.
var ErrChecksum = errors.New("sparse image CRC32 mismatch")

// Header is the sparse file header.
type Header struct {
	Major, Minor    uint16
	FileHeaderSize  uint16
	ChunkHeaderSize uint16
	BlockSize       uint32
	TotalBlocks     uint32
	TotalChunks     uint32
	ImageChecksum   uint32
}

// Chunk describes one chunk of the sparse file as indexed by Open.
type Chunk struct {
	Type       uint16
	Index      int    // position among the file's chunks
	FileOffset int64  // offset of the chunk header in the sparse file
	StartBlock uint32 // first block of the expanded image it covers
	Blocks     uint32 // number of blocks covered (0 for CRC32)
	DataOffset int64  // RAW: offset of the data in the sparse file
	Value      uint32 // FILL: the 4-byte pattern (little-endian as stored); CRC32: the checksum
}

// TypeName returns the libsparse name of a chunk type.
func TypeName(t uint16) string {
	switch t {
	case ChunkRaw:
		return "RAW"
	case ChunkFill:
		return "FILL"
	case ChunkDontCare:
		return "DONT_CARE"
	case ChunkCRC32:
		return "CRC32"
	}
	return fmt.Sprintf("0x%04X", t)
}

// Image is an opened sparse image. It reads as the expanded image through ReadAt. It is safe for
// concurrent use when the underlying io.ReaderAt is.
type Image struct {
	r      io.ReaderAt
	hdr    Header
	size   int64   // expanded size in bytes
	chunks []Chunk // every chunk in file order
	data   []int   // indexes into chunks of those covering blocks, in block order
	starts []int64 // expanded byte offset of each data chunk, for binary search
}

// IsSparse reports whether r starts with the sparse image magic.
func IsSparse(r io.ReaderAt) bool {
	var b [4]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == Magic
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// readFull reads len(p) bytes at off, turning a short read into a truncation error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corruptf("file truncated: needed %d bytes at offset %d, got %d", len(p), off, n)
	}
	return err
}

// ParseHeader decodes and checks a sparse file header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corruptf("file header is %d bytes, need %d", len(b), HeaderSize)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != Magic {
		return Header{}, ErrNotSparse
	}
	h := Header{
		Major:           le.Uint16(b[4:]),
		Minor:           le.Uint16(b[6:]),
		FileHeaderSize:  le.Uint16(b[8:]),
		ChunkHeaderSize: le.Uint16(b[10:]),
		BlockSize:       le.Uint32(b[12:]),
		TotalBlocks:     le.Uint32(b[16:]),
		TotalChunks:     le.Uint32(b[20:]),
		ImageChecksum:   le.Uint32(b[24:]),
	}
	switch {
	case h.Major != MajorVersion:
		return h, corruptf("unsupported major version %d (want %d) at offset 4", h.Major, MajorVersion)
	case h.FileHeaderSize < HeaderSize:
		return h, corruptf("file header size %d at offset 8 is below %d", h.FileHeaderSize, HeaderSize)
	case h.ChunkHeaderSize < ChunkHeaderSize:
		return h, corruptf("chunk header size %d at offset 10 is below %d", h.ChunkHeaderSize, ChunkHeaderSize)
	case h.BlockSize == 0 || h.BlockSize%4 != 0:
		return h, corruptf("block size %d at offset 12 is not a positive multiple of 4", h.BlockSize)
	case h.TotalBlocks == 0:
		return h, corruptf("total block count at offset 16 is zero")
	case uint64(h.TotalBlocks)*uint64(h.BlockSize) > math.MaxInt64:
		return h, corruptf("%d blocks of %d bytes overflow a 64-bit size", h.TotalBlocks, h.BlockSize)
	}
	return h, nil
}

// Open indexes the sparse image r of the given size (in bytes). It reads the file header and every
// chunk header, and checks that the chunks are well formed, lie inside the file, and cover exactly
// TotalBlocks blocks. It reads no chunk data except the 4 bytes of FILL and CRC32 chunks.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	var hb [HeaderSize]byte
	if err := readFull(r, hb[:], 0); err != nil {
		return nil, fmt.Errorf("reading sparse header: %w", err)
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	bs := int64(h.BlockSize)
	// Every chunk takes at least a chunk header in the file: bound the count before allocating.
	maxByFile := (size - int64(h.FileHeaderSize)) / int64(h.ChunkHeaderSize)
	if maxByFile < 0 {
		maxByFile = 0
	}
	if int64(h.TotalChunks) > maxByFile {
		return nil, corruptf("header declares %d chunks but a %d-byte file holds at most %d", h.TotalChunks, size, maxByFile)
	}
	if h.TotalChunks > MaxChunks {
		return nil, corruptf("header declares %d chunks, more than the %d provkit indexes", h.TotalChunks, MaxChunks)
	}
	im := &Image{r: r, hdr: h, size: int64(h.TotalBlocks) * bs}
	im.chunks = make([]Chunk, 0, h.TotalChunks)

	off := int64(h.FileHeaderSize)
	var block uint64
	chb := make([]byte, ChunkHeaderSize+4)
	for i := 0; i < int(h.TotalChunks); i++ {
		if err := readFull(r, chb[:ChunkHeaderSize], off); err != nil {
			return nil, fmt.Errorf("reading sparse chunk %d header at offset %d: %w", i, off, err)
		}
		le := binary.LittleEndian
		c := Chunk{Type: le.Uint16(chb[0:]), Index: i, FileOffset: off, StartBlock: uint32(block), Blocks: le.Uint32(chb[4:])}
		total := int64(le.Uint32(chb[8:]))
		if total < int64(h.ChunkHeaderSize) {
			return nil, corruptf("chunk %d at offset %d: total size %d is smaller than the chunk header", i, off, total)
		}
		dataSize := total - int64(h.ChunkHeaderSize)
		dataOff := off + int64(h.ChunkHeaderSize)
		if dataOff+dataSize > size {
			return nil, corruptf("chunk %d (%s) at offset %d: %d bytes of data run past the end of the %d-byte file", i, TypeName(c.Type), off, dataSize, size)
		}
		switch c.Type {
		case ChunkRaw:
			if want := int64(c.Blocks) * bs; dataSize != want {
				return nil, corruptf("chunk %d (RAW) at offset %d: %d blocks need %d data bytes, chunk has %d", i, off, c.Blocks, want, dataSize)
			}
			c.DataOffset = dataOff
		case ChunkFill, ChunkCRC32:
			if dataSize != 4 {
				return nil, corruptf("chunk %d (%s) at offset %d: data size %d, want 4", i, TypeName(c.Type), off, dataSize)
			}
			if err := readFull(r, chb[ChunkHeaderSize:], dataOff); err != nil {
				return nil, fmt.Errorf("reading sparse chunk %d value at offset %d: %w", i, dataOff, err)
			}
			c.Value = le.Uint32(chb[ChunkHeaderSize:])
			if c.Type == ChunkCRC32 && c.Blocks != 0 {
				// libsparse ignores chunk_sz of CRC32 chunks; it counts no blocks either way.
				c.Blocks = 0
			}
		case ChunkDontCare:
			if dataSize != 0 {
				return nil, corruptf("chunk %d (DONT_CARE) at offset %d: data size %d, want 0", i, off, dataSize)
			}
		default:
			return nil, corruptf("chunk %d at offset %d: unknown chunk type 0x%04X", i, off, c.Type)
		}
		block += uint64(c.Blocks)
		if block > uint64(h.TotalBlocks) {
			return nil, corruptf("chunk %d (%s) at offset %d: chunks cover %d blocks, more than the %d the header declares", i, TypeName(c.Type), off, block, h.TotalBlocks)
		}
		if c.Blocks > 0 {
			im.data = append(im.data, len(im.chunks))
			im.starts = append(im.starts, int64(c.StartBlock)*bs)
		}
		im.chunks = append(im.chunks, c)
		off = dataOff + dataSize
	}
	if block != uint64(h.TotalBlocks) {
		return nil, corruptf("chunks cover %d blocks but the header declares %d (file offset %d after chunk %d)", block, h.TotalBlocks, off, len(im.chunks)-1)
	}
	return im, nil
}

// Header returns the file header.
func (im *Image) Header() Header { return im.hdr }

// Chunks returns the chunk index in file order. The caller must not modify it.
func (im *Image) Chunks() []Chunk { return im.chunks }

// Size returns the size of the expanded image in bytes.
func (im *Image) Size() int64 { return im.size }

// ReadAt reads the expanded image. RAW data is read from the sparse file; FILL and DONT_CARE chunks
// are generated.
func (im *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading sparse image at offset %d: negative offset", off)
	}
	if off >= im.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rem := im.size - off; int64(want) > rem {
		p = p[:rem]
	}
	bs := int64(im.hdr.BlockSize)
	// The data chunk holding off: the last one starting at or before it.
	k := sort.Search(len(im.starts), func(i int) bool { return im.starts[i] > off }) - 1
	n := 0
	for n < len(p) {
		c := &im.chunks[im.data[k]]
		start := im.starts[k]
		end := start + int64(c.Blocks)*bs
		in := off - start
		m := int(min(int64(len(p)-n), end-off))
		dst := p[n : n+m]
		switch c.Type {
		case ChunkRaw:
			if err := readFull(im.r, dst, c.DataOffset+in); err != nil {
				return n, fmt.Errorf("reading sparse chunk %d (RAW) data at file offset %d: %w", c.Index, c.DataOffset+in, err)
			}
		case ChunkFill:
			var pat [4]byte
			binary.LittleEndian.PutUint32(pat[:], c.Value)
			// Blocks are multiples of 4 bytes, so the pattern's phase follows the image offset.
			ph := int(off % 4)
			for i := range dst {
				dst[i] = pat[(ph+i)&3]
			}
		default:
			clear(dst)
		}
		n += m
		off += int64(m)
		k++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// WriteTo writes the expanded image to w, checking every CRC32 chunk (and the header's image
// checksum when it is not zero) on the way.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	return im.expand(w, false)
}

// Verify reads the whole image in order and checks every CRC32 chunk, the header's image checksum
// when it is set, and that all RAW data is readable.
func (im *Image) Verify() error {
	_, err := im.expand(io.Discard, false)
	return err
}

// Expand writes the expanded image to f, skipping over DONT_CARE chunks and FILL chunks of zeros
// with Seek so the output keeps holes, then sets its size with Truncate. f must be empty and
// positioned at 0.
func (im *Image) Expand(f interface {
	io.WriteSeeker
	Truncate(int64) error
}) error {
	return im.ExpandContext(context.Background(), f)
}

// ExpandContext is Expand that stops at the next write once ctx is done: a FILL chunk of 2^31
// blocks reads nothing from the input, so only the writes can notice Ctrl-C.
func (im *Image) ExpandContext(ctx context.Context, f interface {
	io.WriteSeeker
	Truncate(int64) error
}) error {
	if _, err := im.expand(&ctxWriteSeeker{ctx: ctx, ws: f}, true); err != nil {
		return err
	}
	if err := f.Truncate(im.size); err != nil {
		return fmt.Errorf("setting expanded image size to %d: %w", im.size, err)
	}
	return nil
}

const copyBufSize = 1 << 20

// ctxWriteSeeker fails every write once its context is done.
type ctxWriteSeeker struct {
	ctx context.Context
	ws  io.WriteSeeker
}

func (c *ctxWriteSeeker) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.ws.Write(p)
}

func (c *ctxWriteSeeker) Seek(off int64, whence int) (int64, error) { return c.ws.Seek(off, whence) }

// DataBytes is how many bytes of the expanded image are not holes: RAW chunks and FILL chunks of a
// non-zero value, which Expand writes; zero FILL and DONT_CARE chunks become holes that take no
// space. It is the disk space an expansion needs.
func (im *Image) DataBytes() int64 {
	var n int64
	for _, c := range im.chunks {
		if c.Type == ChunkRaw || (c.Type == ChunkFill && c.Value != 0) {
			n += int64(c.Blocks) * int64(im.hdr.BlockSize)
		}
	}
	return n
}

func (im *Image) expand(w io.Writer, seekHoles bool) (int64, error) {
	bs := int64(im.hdr.BlockSize)
	crc := uint32(0)
	needCRC := im.hdr.ImageChecksum != 0
	for i := range im.chunks {
		needCRC = needCRC || im.chunks[i].Type == ChunkCRC32
	}
	buf := make([]byte, min(copyBufSize, im.size))
	var zeros []byte
	var written int64
	ws, _ := w.(io.WriteSeeker)
	for i := range im.chunks {
		c := &im.chunks[i]
		n := int64(c.Blocks) * bs
		switch c.Type {
		case ChunkCRC32:
			if c.Value != crc {
				return written, fmt.Errorf("%w: chunk %d at offset %d records 0x%08x, data before it has 0x%08x", ErrChecksum, c.Index, c.FileOffset, c.Value, crc)
			}
			continue
		case ChunkRaw:
			for done := int64(0); done < n; {
				m := min(n-done, int64(len(buf)))
				if err := readFull(im.r, buf[:m], c.DataOffset+done); err != nil {
					return written, fmt.Errorf("reading sparse chunk %d (RAW) data at file offset %d: %w", c.Index, c.DataOffset+done, err)
				}
				if needCRC {
					crc = crc32.Update(crc, crc32.IEEETable, buf[:m])
				}
				if _, err := w.Write(buf[:m]); err != nil {
					return written, fmt.Errorf("writing expanded image at offset %d: %w", written, err)
				}
				done += m
				written += m
			}
			continue
		case ChunkFill:
			if c.Value == 0 && seekHoles && ws != nil {
				break // zeros: seek over them like DONT_CARE below
			}
			fill := buf[:min(int64(len(buf)), n)]
			for j := 0; j+4 <= len(fill); j += 4 {
				binary.LittleEndian.PutUint32(fill[j:], c.Value)
			}
			for done := int64(0); done < n; {
				m := min(n-done, int64(len(fill)))
				if needCRC {
					crc = crc32.Update(crc, crc32.IEEETable, fill[:m])
				}
				if _, err := w.Write(fill[:m]); err != nil {
					return written, fmt.Errorf("writing expanded image at offset %d: %w", written, err)
				}
				done += m
				written += m
			}
			continue
		}
		// DONT_CARE: zeros.
		if zeros == nil {
			zeros = make([]byte, min(copyBufSize, im.size))
		}
		if needCRC {
			crc = crcZeros(crc, n, zeros)
		}
		if seekHoles && ws != nil {
			if _, err := ws.Seek(n, io.SeekCurrent); err != nil {
				return written, fmt.Errorf("seeking over DONT_CARE chunk %d: %w", c.Index, err)
			}
			written += n
			continue
		}
		for done := int64(0); done < n; {
			m := min(n-done, int64(len(zeros)))
			if _, err := w.Write(zeros[:m]); err != nil {
				return written, fmt.Errorf("writing expanded image at offset %d: %w", written, err)
			}
			done += m
			written += m
		}
	}
	if im.hdr.ImageChecksum != 0 && im.hdr.ImageChecksum != crc {
		return written, fmt.Errorf("%w: header image checksum 0x%08x, expanded image has 0x%08x", ErrChecksum, im.hdr.ImageChecksum, crc)
	}
	return written, nil
}

// crcZeros extends crc over n zero bytes.
func crcZeros(crc uint32, n int64, zeros []byte) uint32 {
	for n > 0 {
		m := min(n, int64(len(zeros)))
		crc = crc32.Update(crc, crc32.IEEETable, zeros[:m])
		n -= m
	}
	return crc
}
