package payload

import (
	"bytes"
	"compress/bzip2"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/ulikunitz/xz"
)

const (
	// maxOpOutput bounds what one compressed operation may decode to in memory. delta_generator
	// splits full operations into 2 MiB chunks; 64 MiB leaves a wide margin.
	maxOpOutput = 64 << 20
	// maxXZDict bounds the LZMA2 dictionary an xz blob may ask for (xz -9 uses 64 MiB).
	maxXZDict = 64 << 20
)

// PartitionReader reads one partition of a full payload in place.
type PartitionReader struct {
	p       *Payload
	pu      *PartitionUpdate
	size    int64
	extents []dstExtent // sorted by offset

	onDevice []region // hash tree / FEC blocks no operation writes and this reader cannot build

	treeOnce sync.Once
	treeData []byte
	treeErr  error
	fecOnce  sync.Once
	fecData  []byte
	fecErr   error

	mu       sync.Mutex
	cache    map[int]*list.Element // op index -> element holding *cachedOp
	lru      *list.List
	cached   int64
	verified map[int]bool // REPLACE ops whose blob hash has been checked
}

type dstExtent struct {
	off, length int64 // in the partition
	op          int
	opOff       int64 // where this extent's bytes start in the operation's output
}

type region struct {
	off, length int64
	what        string
}

type cachedOp struct {
	op   int
	data []byte
}

// Size returns the partition size (new_partition_info.size).
func (r *PartitionReader) Size() int64 { return r.size }

// Name returns the partition name.
func (r *PartitionReader) Name() string { return r.pu.Name }

// OpenPartition returns a reader over the partition called name. It fails with ErrDeltaPayload when
// any of the partition's operations needs the source build.
func (p *Payload) OpenPartition(name string) (*PartitionReader, error) {
	pu, ok := p.Partition(name)
	if !ok {
		return nil, fmt.Errorf("opening payload partition %q: %w", name, ErrNoPartition)
	}
	for i, op := range pu.Operations {
		switch {
		case op.Type.Delta():
			return nil, fmt.Errorf("opening payload partition %q: operation %d is %s: %w", name, i, op.Type, ErrDeltaPayload)
		case !op.Type.Full():
			return nil, fmt.Errorf("opening payload partition %q: operation %d has unknown type %s: %w", name, i, op.Type, ErrUnsupported)
		}
	}
	bs := int64(p.Manifest.BlockSize)
	r := &PartitionReader{p: p, pu: pu, cache: map[int]*list.Element{}, lru: list.New(), verified: map[int]bool{}}
	var end int64
	for i, op := range pu.Operations {
		var opOff int64
		for _, e := range op.DstExtents {
			de := dstExtent{off: int64(e.StartBlock) * bs, length: int64(e.NumBlocks) * bs, op: i, opOff: opOff}
			r.extents = append(r.extents, de)
			opOff += de.length
			end = max(end, de.off+de.length)
		}
		if (op.Type == OpReplaceBZ || op.Type == OpReplaceXZ) && opOff > maxOpOutput {
			return nil, fmt.Errorf("opening payload partition %q: operation %d (%s) writes %d bytes, more than the %d this reader decompresses at once: %w", name, i, op.Type, opOff, maxOpOutput, ErrUnsupported)
		}
		if op.Type == OpReplace && int64(op.DataLength) != opOff {
			return nil, fmt.Errorf("opening payload partition %q: operation %d (REPLACE) carries %d bytes for %d bytes of blocks: %w", name, i, op.DataLength, opOff, ErrCorrupt)
		}
	}
	sort.Slice(r.extents, func(a, b int) bool { return r.extents[a].off < r.extents[b].off })
	for i := 1; i < len(r.extents); i++ {
		if prev := r.extents[i-1]; r.extents[i].off < prev.off+prev.length {
			return nil, fmt.Errorf("opening payload partition %q: operations %d and %d write the same block %d: %w", name, prev.op, r.extents[i].op, r.extents[i].off/bs, ErrCorrupt)
		}
	}
	r.size = end
	if pu.New != nil {
		r.size = int64(pu.New.Size)
	}
	for _, v := range []struct {
		e    *Extent
		what string
	}{{pu.HashTree, "the dm-verity hash tree"}, {pu.FEC, "the FEC data"}} {
		if v.e == nil || v.e.NumBlocks == 0 {
			continue
		}
		reg := region{off: int64(v.e.StartBlock) * bs, length: int64(v.e.NumBlocks) * bs, what: v.what}
		if v.e.StartBlock > maxBlocks(uint64(bs)) || v.e.NumBlocks > maxBlocks(uint64(bs))-v.e.StartBlock || reg.off+reg.length > r.size {
			return nil, fmt.Errorf("opening payload partition %q: %s extent %+v runs past the partition: %w", name, v.what, *v.e, ErrCorrupt)
		}
		if r.written(reg.off, reg.length) {
			continue
		}
		if v.e == pu.HashTree && r.canBuildTree() {
			// Serve the tree by building it from the data, as update_engine does on the device.
			r.extents = append(r.extents, dstExtent{off: reg.off, length: reg.length, op: treeOp})
			sort.Slice(r.extents, func(a, b int) bool { return r.extents[a].off < r.extents[b].off })
			continue
		}
		if v.e == pu.FEC && r.canBuildFEC() {
			r.extents = append(r.extents, dstExtent{off: reg.off, length: reg.length, op: fecOp})
			sort.Slice(r.extents, func(a, b int) bool { return r.extents[a].off < r.extents[b].off })
			continue
		}
		r.onDevice = append(r.onDevice, reg)
	}
	return r, nil
}

// Pseudo-operations that serve what update_engine computes on the device, built from the
// partition's own bytes: the hash tree, and the FEC over data and tree.
const (
	treeOp = -1
	fecOp  = -2
)

// canBuildFEC reports whether the FEC extents describe FEC this reader can rebuild: its data range is
// readable (written by operations or a rebuilt tree) and the FEC extent has libfec's size for it.
func (r *PartitionReader) canBuildFEC() bool {
	pu, bs := r.pu, uint64(r.p.Manifest.BlockSize)
	d, f := pu.FECData, pu.FEC
	if d == nil || d.NumBlocks == 0 || bs != 4096 || pu.FECRoots < 2 || pu.FECRoots > 24 ||
		d.StartBlock > maxBlocks(bs) || d.NumBlocks > maxBlocks(bs)-d.StartBlock || int64((d.StartBlock+d.NumBlocks)*bs) > r.size {
		return false
	}
	size := avb.FECSize(d.NumBlocks*bs, int(pu.FECRoots), uint32(bs))
	if size != f.NumBlocks*bs || size > avb.MaxBuiltFEC {
		return false
	}
	// Every block of the FEC data must be readable: written, or the hash tree this reader rebuilds.
	off, end := int64(d.StartBlock*bs), int64((d.StartBlock+d.NumBlocks)*bs)
	i := sort.Search(len(r.extents), func(i int) bool { return r.extents[i].off+r.extents[i].length > off })
	for pos := off; pos < end; i++ {
		if i >= len(r.extents) || r.extents[i].off > pos || r.extents[i].op == fecOp {
			return false
		}
		pos = r.extents[i].off + r.extents[i].length
	}
	return true
}

// fec builds (once) and returns the FEC data.
func (r *PartitionReader) fec() ([]byte, error) {
	r.fecOnce.Do(func() {
		pu, bs := r.pu, int64(r.p.Manifest.BlockSize)
		data := io.NewSectionReader(r, int64(pu.FECData.StartBlock)*bs, int64(pu.FECData.NumBlocks)*bs)
		fec, err := avb.BuildFEC(context.Background(), data, uint64(data.Size()), int(pu.FECRoots), uint32(bs))
		if err != nil {
			r.fecErr = fmt.Errorf("building the FEC of partition %q: %w", pu.Name, err)
			return
		}
		r.fecData = fec
	})
	return r.fecData, r.fecErr
}

// canBuildTree reports whether the hash tree extents describe a tree this reader can rebuild: a
// known algorithm, a data range inside the partition that operations write, and room for the tree.
func (r *PartitionReader) canBuildTree() bool {
	pu, bs := r.pu, uint64(r.p.Manifest.BlockSize)
	d, t := pu.HashTreeData, pu.HashTree
	switch pu.HashTreeAlgorithm {
	case "sha1", "sha256", "sha512":
	default:
		return false
	}
	if d == nil || d.NumBlocks == 0 || d.StartBlock > maxBlocks(bs) || d.NumBlocks > maxBlocks(bs)-d.StartBlock ||
		int64((d.StartBlock+d.NumBlocks)*bs) > r.size || !r.written(int64(d.StartBlock*bs), int64(d.NumBlocks*bs)) {
		return false
	}
	digest := map[string]int{"sha1": 32, "sha256": 32, "sha512": 64}[pu.HashTreeAlgorithm] // padded sizes
	_, _, size := avb.HashtreeLevels(d.NumBlocks*bs, uint32(bs), uint32(bs), digest)
	return size <= t.NumBlocks*bs && size <= avb.MaxBuiltHashtree
}

// tree builds (once) and returns the hash tree, zero-padded to the tree extent.
func (r *PartitionReader) tree() ([]byte, error) {
	r.treeOnce.Do(func() {
		pu, bs := r.pu, int64(r.p.Manifest.BlockSize)
		data := io.NewSectionReader(r, int64(pu.HashTreeData.StartBlock)*bs, int64(pu.HashTreeData.NumBlocks)*bs)
		_, tree, err := avb.BuildHashtree(context.Background(), pu.HashTreeAlgorithm, pu.HashTreeSalt, uint32(bs), uint32(bs), data, uint64(data.Size()))
		if err != nil {
			r.treeErr = fmt.Errorf("building the hash tree of partition %q: %w", pu.Name, err)
			return
		}
		r.treeData = append(tree, make([]byte, int64(pu.HashTree.NumBlocks)*bs-int64(len(tree)))...)
	})
	return r.treeData, r.treeErr
}

// written reports whether operations write every byte of [off, off+n).
func (r *PartitionReader) written(off, n int64) bool {
	i := sort.Search(len(r.extents), func(i int) bool { return r.extents[i].off+r.extents[i].length > off })
	for pos := off; pos < off+n; i++ {
		if i >= len(r.extents) || r.extents[i].off > pos {
			return false
		}
		pos = r.extents[i].off + r.extents[i].length
	}
	return true
}

// OnDevice returns the byte ranges of the partition that update_engine computes on the device (hash
// tree, FEC) and that this payload does not carry. Reading them fails with ErrVerityOnDevice.
func (r *PartitionReader) OnDevice() [][2]int64 {
	var out [][2]int64
	for _, reg := range r.onDevice {
		out = append(out, [2]int64{reg.off, reg.length})
	}
	return out
}

func (r *PartitionReader) onDeviceText() string {
	var parts []string
	for _, reg := range r.onDevice {
		parts = append(parts, fmt.Sprintf("%s at bytes %d+%d", reg.what, reg.off, reg.length))
	}
	return strings.Join(parts, " and ")
}

// checkOp verifies one operation's data blob hash (decoding compressed ones fully).
func (r *PartitionReader) checkOp(i int) error {
	switch r.pu.Operations[i].Type {
	case OpReplace:
		return r.verifyReplace(i)
	case OpReplaceBZ, OpReplaceXZ:
		_, err := r.decoded(i)
		return err
	}
	return nil
}

// ReadAt implements io.ReaderAt. Blocks no operation writes read as zeros.
func (r *PartitionReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading payload partition %q: negative offset %d", r.pu.Name, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(b)
	if int64(want) > r.size-off {
		b = b[:r.size-off]
	}
	for _, reg := range r.onDevice {
		if off < reg.off+reg.length && off+int64(len(b)) > reg.off {
			return 0, fmt.Errorf("reading payload partition %q at offset %d: bytes %d+%d are %s: %w", r.pu.Name, off, reg.off, reg.length, reg.what, ErrVerityOnDevice)
		}
	}
	n := 0
	i := sort.Search(len(r.extents), func(i int) bool { return r.extents[i].off+r.extents[i].length > off })
	for n < len(b) {
		pos := off + int64(n)
		if i >= len(r.extents) || r.extents[i].off > pos {
			// A hole: zeros up to the next extent.
			gap := int64(len(b) - n)
			if i < len(r.extents) {
				gap = min(gap, r.extents[i].off-pos)
			}
			clear(b[n : n+int(gap)])
			n += int(gap)
			continue
		}
		e := r.extents[i]
		in := pos - e.off
		chunk := b[n:min(len(b), n+int(e.length-in))]
		if err := r.readOp(e.op, e.opOff+in, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		i++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readOp fills dst with the operation's output from offset off.
func (r *PartitionReader) readOp(i int, off int64, dst []byte) error {
	if i == treeOp || i == fecOp {
		build := r.tree
		if i == fecOp {
			build = r.fec
		}
		b, err := build()
		if err != nil {
			return err
		}
		copy(dst, b[off:])
		return nil
	}
	op := &r.pu.Operations[i]
	where := func() string { return fmt.Sprintf("operation %d (%s) of partition %q", i, op.Type, r.pu.Name) }
	switch op.Type {
	case OpZero, OpDiscard:
		clear(dst)
		return nil
	case OpReplace:
		if err := r.verifyReplace(i); err != nil {
			return err
		}
		at := r.p.DataOffset + int64(op.DataOffset) + off
		if _, err := r.p.r.ReadAt(dst, at); err != nil {
			return fmt.Errorf("reading %s at payload offset %d: %w", where(), at, err)
		}
		return nil
	}
	data, err := r.decoded(i)
	if err != nil {
		return err
	}
	copy(dst, data[off:])
	return nil
}

// verifyReplace checks a REPLACE operation's blob hash once, streaming.
func (r *PartitionReader) verifyReplace(i int) error {
	op := &r.pu.Operations[i]
	if len(op.DataSHA256) == 0 {
		return nil
	}
	r.mu.Lock()
	done := r.verified[i]
	r.mu.Unlock()
	if done {
		return nil
	}
	h := sha256.New()
	at := r.p.DataOffset + int64(op.DataOffset)
	if _, err := io.Copy(h, io.NewSectionReader(r.p.r, at, int64(op.DataLength))); err != nil {
		return fmt.Errorf("hashing operation %d (REPLACE) of partition %q at payload offset %d: %w", i, r.pu.Name, at, err)
	}
	if !bytes.Equal(h.Sum(nil), op.DataSHA256) {
		return fmt.Errorf("reading operation %d (REPLACE) of partition %q: data blob at payload offset %d: %w", i, r.pu.Name, at, ErrHashMismatch)
	}
	r.mu.Lock()
	r.verified[i] = true
	r.mu.Unlock()
	return nil
}

// decoded returns a compressed operation's output, from the cache or by decoding it.
func (r *PartitionReader) decoded(i int) ([]byte, error) {
	r.mu.Lock()
	if el, ok := r.cache[i]; ok {
		r.lru.MoveToFront(el)
		data := el.Value.(*cachedOp).data
		r.mu.Unlock()
		return data, nil
	}
	r.mu.Unlock()
	data, err := r.decode(i)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[i]; !ok {
		r.cache[i] = r.lru.PushFront(&cachedOp{op: i, data: data})
		r.cached += int64(len(data))
		for r.cached > r.p.CacheBytes && r.lru.Len() > 1 {
			old := r.lru.Remove(r.lru.Back()).(*cachedOp)
			delete(r.cache, old.op)
			r.cached -= int64(len(old.data))
		}
	}
	return data, nil
}

func (r *PartitionReader) decode(i int) ([]byte, error) {
	op := &r.pu.Operations[i]
	var outSize int64
	for _, e := range op.DstExtents {
		outSize += int64(e.NumBlocks) * int64(r.p.Manifest.BlockSize)
	}
	where := fmt.Sprintf("operation %d (%s) of partition %q", i, op.Type, r.pu.Name)
	at := r.p.DataOffset + int64(op.DataOffset)
	blob := make([]byte, op.DataLength)
	if _, err := r.p.r.ReadAt(blob, at); err != nil {
		return nil, fmt.Errorf("reading %s at payload offset %d: %w", where, at, err)
	}
	if len(op.DataSHA256) > 0 {
		if sum := sha256.Sum256(blob); !bytes.Equal(sum[:], op.DataSHA256) {
			return nil, fmt.Errorf("reading %s: data blob at payload offset %d: %w", where, at, ErrHashMismatch)
		}
	}
	var dec io.Reader
	switch op.Type {
	case OpReplaceBZ:
		dec = bzip2.NewReader(bytes.NewReader(blob))
	case OpReplaceXZ:
		if err := checkXZ(blob); err != nil {
			return nil, fmt.Errorf("decoding %s at payload offset %d: %w", where, at, err)
		}
		x, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(blob))
		if err != nil {
			return nil, fmt.Errorf("decoding %s at payload offset %d: %w", where, at, err)
		}
		dec = x
	case OpZstd:
		// The frame's window is bounded before the decoder allocates it, and the output by the
		// operation's blocks (checked below, as for xz).
		z, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("decoding %s at payload offset %d: %w", where, at, err)
		}
		defer z.Close()
		dec = z
	default:
		return nil, fmt.Errorf("decoding %s: not a compressed operation: %w", where, ErrUnsupported)
	}
	out := make([]byte, outSize)
	n, err := io.ReadFull(dec, out)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("decoding %s at payload offset %d: %w: %w", where, at, err, ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding %s at payload offset %d: got %d of the %d bytes its blocks need: %w", where, at, n, outSize, err)
	}
	// The declared size is the limit: more output is a corrupt (or hostile) blob.
	var one [1]byte
	if m, _ := dec.Read(one[:]); m > 0 {
		return nil, fmt.Errorf("decoding %s at payload offset %d: decompresses to more than the %d bytes its blocks hold: %w", where, at, outSize, ErrCorrupt)
	}
	return out, nil
}

// maxZstdWindow is the largest zstd window (history) a ZSTD operation may ask for: zstd -19 uses
// 8 MiB, --long=27 128 MiB; more is refused before anything is allocated.
const maxZstdWindow = 128 << 20

// checkXZ walks an xz stream's block headers through its index and refuses dictionaries larger than
// maxXZDict before the decoder allocates them.
func checkXZ(b []byte) error {
	if len(b) < 24 || !bytes.Equal(b[:6], []byte{0xfd, '7', 'z', 'X', 'Z', 0}) {
		return fmt.Errorf("not an xz stream: %w", ErrCorrupt)
	}
	foot := b[len(b)-12:]
	if string(foot[10:]) != "YZ" {
		return fmt.Errorf("xz stream footer missing (trailing data or concatenated streams): %w", ErrCorrupt)
	}
	indexSize := (int64(binary.LittleEndian.Uint32(foot[4:])) + 1) * 4
	indexStart := int64(len(b)) - 12 - indexSize
	if indexStart < 12 {
		return fmt.Errorf("xz index of %d bytes does not fit: %w", indexSize, ErrCorrupt)
	}
	idx := b[indexStart : len(b)-12]
	if idx[0] != 0 {
		return fmt.Errorf("xz index indicator missing at offset %d: %w", indexStart, ErrCorrupt)
	}
	p := 1
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(idx[p:])
		if n <= 0 {
			return 0, fmt.Errorf("bad varint in xz index: %w", ErrCorrupt)
		}
		p += n
		return v, nil
	}
	records, err := uv()
	if err != nil {
		return err
	}
	if records > uint64(len(idx)) {
		return fmt.Errorf("xz index claims %d blocks: %w", records, ErrCorrupt)
	}
	blockAt := int64(12)
	for k := uint64(0); k < records; k++ {
		unpadded, err := uv()
		if err != nil {
			return err
		}
		if _, err := uv(); err != nil { // uncompressed size
			return err
		}
		if err := checkXZBlockHeader(b, blockAt); err != nil {
			return err
		}
		if unpadded > uint64(indexStart) {
			return fmt.Errorf("xz block %d of %d bytes does not fit: %w", k, unpadded, ErrCorrupt)
		}
		blockAt += (int64(unpadded) + 3) &^ 3
		if blockAt > indexStart {
			return fmt.Errorf("xz block %d runs into the index: %w", k, ErrCorrupt)
		}
	}
	// The blocks the index lists must fill the stream up to the index: a block it does not list
	// would be decoded (and its dictionary allocated) without having been checked here.
	if blockAt != indexStart {
		return fmt.Errorf("xz index lists %d blocks ending at offset %d, but the index starts at %d: %w", records, blockAt, indexStart, ErrCorrupt)
	}
	return nil
}

func checkXZBlockHeader(b []byte, at int64) error {
	if at >= int64(len(b)) || b[at] == 0 {
		return fmt.Errorf("xz block header missing at offset %d: %w", at, ErrCorrupt)
	}
	size := (int64(b[at]) + 1) * 4
	if at+size > int64(len(b)) {
		return fmt.Errorf("xz block header at offset %d runs past the stream: %w", at, ErrCorrupt)
	}
	h := b[at : at+size]
	flags := h[1]
	p := 2
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(h[p:])
		if n <= 0 {
			return 0, fmt.Errorf("bad varint in xz block header at offset %d: %w", at, ErrCorrupt)
		}
		p += n
		return v, nil
	}
	if flags&0x40 != 0 {
		if _, err := uv(); err != nil {
			return err
		}
	}
	if flags&0x80 != 0 {
		if _, err := uv(); err != nil {
			return err
		}
	}
	for f := 0; f <= int(flags&3); f++ {
		id, err := uv()
		if err != nil {
			return err
		}
		psize, err := uv()
		if err != nil {
			return err
		}
		if psize > uint64(len(h)-p) {
			return fmt.Errorf("xz filter properties at offset %d run past the block header: %w", at, ErrCorrupt)
		}
		if id == 0x21 { // LZMA2
			if psize != 1 {
				return fmt.Errorf("xz LZMA2 filter at offset %d has %d property bytes: %w", at, psize, ErrCorrupt)
			}
			d := h[p]
			if d > 40 {
				return fmt.Errorf("xz LZMA2 dictionary byte %d at offset %d is invalid: %w", d, at, ErrCorrupt)
			}
			dict := int64(2|d&1) << (d/2 + 11)
			if d == 40 || dict > maxXZDict {
				return fmt.Errorf("xz block at offset %d asks for a %d-byte dictionary, more than the %d allowed: %w", at, dict, maxXZDict, ErrUnsupported)
			}
		}
		p += int(psize)
	}
	return nil
}
