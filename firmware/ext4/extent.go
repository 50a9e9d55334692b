package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// span is a run of logical blocks starting at the looked-up block: either stored contiguously
// from phys, or a hole (unallocated or uninitialized) reading as zeros.
type span struct {
	phys uint64
	n    uint64
	hole bool
}

const extentMagic = 0xF30A

type extNode struct {
	depth   uint16
	entries []extEntry
}

type extEntry struct {
	lblk   uint64 // first logical block
	len    uint64 // leaves: block count
	phys   uint64 // leaves: first physical block; index: child node block
	uninit bool
}

// mapper resolves logical blocks of one inode. It keeps the last node read at each tree level
// (or the last indirect block per level), so sequential reads touch each node once.
type mapper struct {
	fsys  *FS
	n     *Inode
	cache [maxExtentDepth + 1]struct {
		blk  uint64
		node *extNode
	}
	ind [4]struct {
		blk uint64
		ptr []uint32
	}
}

func newMapper(n *Inode) *mapper { return &mapper{fsys: n.fsys, n: n} }

// lookup returns the span that starts at logical block lblk.
func (m *mapper) lookup(lblk uint64) (span, error) {
	if m.n.flags&flagExtents != 0 {
		return m.lookupExtent(lblk)
	}
	return m.lookupBlockMap(lblk)
}

func (m *mapper) what() string { return fmt.Sprintf("inode %d", m.n.ino) }

// parseExtNode decodes an extent node (the inode's i_block root or a tree block).
func (m *mapper) parseExtNode(b []byte, where string, wantDepth int) (*extNode, error) {
	le := binary.LittleEndian
	if len(b) < 12 || le.Uint16(b) != extentMagic {
		return nil, corruptf("inode %d extent %s: bad header magic", m.n.ino, where)
	}
	count := int(le.Uint16(b[2:]))
	maxEntries := int(le.Uint16(b[4:]))
	depth := le.Uint16(b[6:])
	if maxEntries == 0 || 12+12*maxEntries > len(b) || count > maxEntries {
		return nil, corruptf("inode %d extent %s: %d entries of at most %d do not fit %d bytes", m.n.ino, where, count, maxEntries, len(b))
	}
	if depth > maxExtentDepth {
		return nil, corruptf("inode %d extent %s: tree depth %d exceeds %d", m.n.ino, where, depth, maxExtentDepth)
	}
	if wantDepth >= 0 && int(depth) != wantDepth {
		return nil, corruptf("inode %d extent %s: depth %d, its parent expects %d", m.n.ino, where, depth, wantDepth)
	}
	nd := &extNode{depth: depth, entries: make([]extEntry, count)}
	var prevEnd uint64
	for i := 0; i < count; i++ {
		e := b[12+12*i:]
		var x extEntry
		x.lblk = uint64(le.Uint32(e))
		if depth == 0 {
			l := uint64(le.Uint16(e[4:]))
			if l > 32768 {
				x.uninit = true
				l -= 32768
			}
			x.len = l
			x.phys = uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if x.len == 0 {
				return nil, corruptf("inode %d extent %s: entry %d has length 0", m.n.ino, where, i)
			}
			if i > 0 && x.lblk < prevEnd {
				return nil, corruptf("inode %d extent %s: entry %d (logical block %d) overlaps or precedes the one before", m.n.ino, where, i, x.lblk)
			}
			prevEnd = x.lblk + x.len
			if !x.uninit {
				if err := m.fsys.checkData(x.phys, x.len, func() string {
					return fmt.Sprintf("inode %d extent %s entry %d (logical %d)", m.n.ino, where, i, x.lblk)
				}); err != nil {
					return nil, err
				}
			} else if x.phys+x.len > m.fsys.sb.BlocksCount {
				return nil, corruptf("inode %d extent %s entry %d: blocks past the end of the file system", m.n.ino, where, i)
			}
		} else {
			x.phys = uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
			if i > 0 && x.lblk <= nd.entries[i-1].lblk {
				return nil, corruptf("inode %d extent %s: index entry %d is out of order", m.n.ino, where, i)
			}
			if err := m.fsys.checkData(x.phys, 1, func() string {
				return fmt.Sprintf("inode %d extent %s index entry %d", m.n.ino, where, i)
			}); err != nil {
				return nil, err
			}
		}
		nd.entries[i] = x
	}
	return nd, nil
}

// extBlock reads the extent tree block blk at the given depth, verifying its checksum.
func (m *mapper) extBlock(blk uint64, depth int) (*extNode, error) {
	c := &m.cache[depth]
	if c.node != nil && c.blk == blk {
		return c.node, nil
	}
	where := fmt.Sprintf("tree block %d at offset %d", blk, int64(blk)*m.fsys.bs)
	b, err := m.fsys.readBlock(blk, fmt.Sprintf("inode %d extent %s", m.n.ino, where))
	if err != nil {
		return nil, err
	}
	nd, err := m.parseExtNode(b, where, depth)
	if err != nil {
		return nil, err
	}
	if m.fsys.metaCsum {
		maxEntries := int(binary.LittleEndian.Uint16(b[4:]))
		tail := 12 + 12*maxEntries
		if tail+4 > len(b) {
			return nil, corruptf("inode %d extent %s: no room for the checksum tail", m.n.ino, where)
		}
		stored := binary.LittleEndian.Uint32(b[tail:])
		if got := crc32c(m.n.csumSeed(), b[:tail]); got != stored {
			return nil, checksumf("inode %d extent %s: checksum 0x%08x, computed 0x%08x", m.n.ino, where, stored, got)
		}
	}
	c.blk, c.node = blk, nd
	return nd, nil
}

func (m *mapper) lookupExtent(lblk uint64) (span, error) {
	nd, err := m.parseExtNode(m.n.iblock[:], "root in i_block", -1)
	if err != nil {
		return span{}, err
	}
	// next bounds the hole after the last extent at or before lblk.
	next := uint64(1) << 32
	for {
		es := nd.entries
		i := sort.Search(len(es), func(i int) bool { return es[i].lblk > lblk }) - 1
		if i+1 < len(es) {
			next = min(next, es[i+1].lblk)
		}
		if nd.depth == 0 {
			if i >= 0 && lblk < es[i].lblk+es[i].len {
				e := es[i]
				d := lblk - e.lblk
				if e.uninit {
					return span{n: e.len - d, hole: true}, nil
				}
				return span{phys: e.phys + d, n: e.len - d}, nil
			}
			if lblk >= next {
				return span{}, corruptf("inode %d: extent lookup for block %d went wrong (index bounds)", m.n.ino, lblk)
			}
			return span{n: next - lblk, hole: true}, nil
		}
		if i < 0 {
			// Before the first index entry: a hole up to it.
			if len(es) == 0 {
				return span{n: next - lblk, hole: true}, nil
			}
			return span{n: es[0].lblk - lblk, hole: true}, nil
		}
		child, err := m.extBlock(es[i].phys, int(nd.depth)-1)
		if err != nil {
			return span{}, err
		}
		if len(child.entries) > 0 && (child.entries[0].lblk < es[i].lblk || (i+1 < len(es) && child.entries[len(child.entries)-1].lblk >= es[i+1].lblk)) {
			return span{}, corruptf("inode %d extent tree block %d: entries outside the range its index entry gives", m.n.ino, es[i].phys)
		}
		nd = child
	}
}

// lookupBlockMap resolves lblk through the legacy direct/indirect block map.
func (m *mapper) lookupBlockMap(lblk uint64) (span, error) {
	le := binary.LittleEndian
	p := uint64(m.fsys.bs / 4)
	direct := make([]uint32, 15)
	for i := range direct {
		direct[i] = le.Uint32(m.n.iblock[4*i:])
	}
	if lblk < 12 {
		return m.runIn(direct[:12], lblk, "direct pointers")
	}
	// Walk down: level 1 = single indirect, 2 = double, 3 = triple.
	rel := lblk - 12
	span1 := uint64(1)
	for level := 1; level <= 3; level++ {
		span1 *= p // blocks covered by this level's tree
		if rel < span1 {
			ptr := uint64(direct[11+level])
			per := span1
			for l := level; l >= 1; l-- {
				per /= p
				if ptr == 0 {
					// A missing indirect block: a hole to the end of what it would cover.
					return span{n: per*p - rel%(per*p), hole: true}, nil
				}
				ptrs, err := m.indirect(ptr, l)
				if err != nil {
					return span{}, err
				}
				idx := rel / per
				rel %= per
				if l == 1 {
					return m.runIn(ptrs, idx, fmt.Sprintf("indirect block %d", ptr))
				}
				ptr = uint64(ptrs[idx])
			}
		}
		rel -= span1
	}
	return span{}, corruptf("inode %d: logical block %d is beyond what a block map addresses", m.n.ino, lblk)
}

// runIn returns the span starting at ptrs[i]: contiguous physical blocks or a run of zeros.
func (m *mapper) runIn(ptrs []uint32, i uint64, where string) (span, error) {
	first := uint64(ptrs[i])
	n := uint64(1)
	if first == 0 {
		for i+n < uint64(len(ptrs)) && ptrs[i+n] == 0 {
			n++
		}
		return span{n: n, hole: true}, nil
	}
	for i+n < uint64(len(ptrs)) && uint64(ptrs[i+n]) == first+n {
		n++
	}
	if err := m.fsys.checkData(first, n, func() string { return fmt.Sprintf("inode %d %s entry %d", m.n.ino, where, i) }); err != nil {
		return span{}, err
	}
	return span{phys: first, n: n}, nil
}

// indirect reads an indirect block at tree level l (1 = holds data pointers).
func (m *mapper) indirect(blk uint64, l int) ([]uint32, error) {
	c := &m.ind[l]
	if c.ptr != nil && c.blk == blk {
		return c.ptr, nil
	}
	what := fmt.Sprintf("inode %d indirect block %d (level %d)", m.n.ino, blk, l)
	if err := m.fsys.checkData(blk, 1, func() string { return what }); err != nil {
		return nil, err
	}
	b, err := m.fsys.readBlock(blk, what)
	if err != nil {
		return nil, err
	}
	ptrs := make([]uint32, len(b)/4)
	for i := range ptrs {
		ptrs[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	c.blk, c.ptr = blk, ptrs
	return ptrs, nil
}
