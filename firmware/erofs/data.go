package erofs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

const (
	// maxPclusterSize is the largest compressed physical cluster EROFS allows (1 MiB).
	maxPclusterSize = 1 << 20
	// MaxExtentSize is the largest decompressed extent this reader accepts (Linux's limit too):
	// one extent is decompressed whole, so this bounds the memory a single read can need.
	MaxExtentSize = 12 << 20
	nullAddr      = 0xffffffff
)

// dataReader reads the bytes of one inode, whatever its layout. It is safe for concurrent use.
type dataReader struct {
	f  *FS
	in *Inode
	z  *zmap // compressed layouts only

	mu   sync.Mutex
	last *zextent // the extent that served the last compressed read
}

func (f *FS) newDataReader(in *Inode) (*dataReader, error) {
	d := &dataReader{f: f, in: in}
	if in.layout == LayoutCompressedFull || in.layout == LayoutCompressedCompact {
		z, err := f.newZmap(in)
		if err != nil {
			return nil, err
		}
		d.z = z
	}
	return d, nil
}

// ReadAt reads len(p) bytes of the inode's data at off. It returns io.EOF when off+len(p) runs past
// the end of the data, after filling what there is.
func (d *dataReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading inode %d: negative offset %d", d.in.nid, off)
	}
	if off >= d.in.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := d.in.size - off; int64(want) > rest {
		want = int(rest)
	}
	n := 0
	for n < want {
		var m int
		var err error
		if d.z != nil {
			m, err = d.readCompressed(p[n:want], off+int64(n))
		} else {
			m, err = d.readRaw(p[n:want], off+int64(n))
		}
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, fmt.Errorf("reading inode %d at offset %d: no progress: %w", d.in.nid, off+int64(n), ErrCorrupt)
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readRaw serves flat and chunk-based layouts: it maps off to a run of image bytes (or a hole) and
// copies from it.
func (d *dataReader) readRaw(p []byte, off int64) (int, error) {
	f, in := d.f, d.in
	var (
		r       io.ReaderAt = f.r
		rsize               = f.size
		pa, run int64
		hole    bool
		what    string
	)
	switch in.layout {
	case LayoutFlatPlain, LayoutFlatInline:
		blocks, _ := f.flatBlocks(in)
		if off < blocks<<f.bsBits {
			pa = int64(in.u)<<f.bsBits + off
			run = blocks<<f.bsBits - off
			what = fmt.Sprintf("data block %d of inode %d", int64(in.u)+off>>f.bsBits, in.nid)
		} else {
			pa = in.tailPos() + off&(f.bs-1)
			run = in.size - off
			what = fmt.Sprintf("inline tail of inode %d", in.nid)
		}
	case LayoutChunkBased:
		var err error
		r, rsize, pa, run, hole, err = d.mapChunk(off)
		if err != nil {
			return 0, err
		}
		what = fmt.Sprintf("chunk of inode %d at file offset %d", in.nid, off)
	default:
		return 0, fmt.Errorf("reading inode %d: %s: %w", in.nid, LayoutName(in.layout), ErrUnsupported)
	}
	if run > in.size-off {
		run = in.size - off
	}
	n := len(p)
	if int64(n) > run {
		n = int(run)
	}
	if hole {
		clear(p[:n])
		return n, nil
	}
	if pa < 0 || pa > rsize || int64(n) > rsize-pa {
		return 0, fmt.Errorf("reading %s: %d bytes at offset %d past the end of the %d-byte device: %w", what, n, pa, rsize, ErrCorrupt)
	}
	m, err := r.ReadAt(p[:n], pa)
	if m == n {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return m, fmt.Errorf("reading %s at offset %d: %w", what, pa, err)
}

// mapChunk finds the chunk holding off: the device it is on, its byte address, how many bytes of
// the chunk follow off, or that it is a hole.
func (d *dataReader) mapChunk(off int64) (r io.ReaderAt, rsize, pa, run int64, hole bool, err error) {
	f, in := d.f, d.in
	chunkBits := f.bsBits + uint(in.u&chunkFormatBlkbitsMask)
	unit := int64(4)
	if in.u&chunkFormatIndexes != 0 {
		unit = 8
	}
	chunk := off >> chunkBits
	pos := (in.tailPos()+unit-1)/unit*unit + unit*chunk
	var b [8]byte
	if err := f.readAt(b[:unit], pos, fmt.Sprintf("chunk %d index of inode %d", chunk, in.nid)); err != nil {
		return nil, 0, 0, 0, false, err
	}
	run = (chunk+1)<<chunkBits - off
	var blk uint32
	dev := 0
	if unit == 4 {
		blk = binary.LittleEndian.Uint32(b[:])
	} else {
		dev = int(binary.LittleEndian.Uint16(b[2:]) & f.deviceIDMask())
		blk = binary.LittleEndian.Uint32(b[4:])
	}
	if blk == nullAddr {
		return nil, 0, 0, run, true, nil
	}
	pa = int64(blk)<<f.bsBits + (off & (int64(1)<<chunkBits - 1))
	if dev == 0 {
		// A flat multi-device image maps extra devices into the primary block address space.
		for i, ds := range f.devices {
			start := int64(ds.mappedBlkAddr) << f.bsBits
			if ds.mappedBlkAddr != 0 && pa >= start && pa < start+int64(ds.blocks)<<f.bsBits {
				dev = i + 1
				pa -= start
				break
			}
		}
		if dev == 0 {
			return f.r, f.size, pa, run, false, nil
		}
	}
	if dev > len(f.devices) {
		return nil, 0, 0, 0, false, fmt.Errorf("reading chunk %d of inode %d: device %d not in the device table (%d extra devices): %w", chunk, in.nid, dev, len(f.devices), ErrCorrupt)
	}
	ds := f.devices[dev-1]
	if ds.r == nil {
		return nil, 0, 0, 0, false, fmt.Errorf("reading chunk %d of inode %d: data is on extra device %d, which was not given (Options.Devices): %w", chunk, in.nid, dev, ErrUnsupported)
	}
	return ds.r, ds.size, pa, run, false, nil
}

func (f *FS) deviceIDMask() uint16 {
	n := uint32(f.sb.ExtraDevices) + 1
	m := uint32(1)
	for m < n {
		m <<= 1
	}
	return uint16(m - 1)
}

// readCompressed copies from the decompressed extent holding off.
func (d *dataReader) readCompressed(p []byte, off int64) (int, error) {
	d.mu.Lock()
	e := d.last
	d.mu.Unlock()
	if e == nil || off < e.la || off >= e.la+e.llen {
		var err error
		if e, err = d.z.mapExtent(off); err != nil {
			return 0, err
		}
	}
	data, err := d.extentData(e)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	d.last = e
	d.mu.Unlock()
	return copy(p, data[off-e.la:]), nil
}

// extentData returns the decompressed bytes of extent e, from the cache or by decoding it.
func (d *dataReader) extentData(e *zextent) ([]byte, error) {
	key := extentKey{nid: d.in.nid, la: e.la}
	if data, ok := d.f.cache.get(key); ok && int64(len(data)) == e.llen {
		return data, nil
	}
	data, err := d.z.decode(e)
	if err != nil {
		return nil, err
	}
	d.f.cache.put(key, data)
	return data, nil
}
