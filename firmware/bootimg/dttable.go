package bootimg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotDTTable is returned for data without the DT table magic.
var ErrNotDTTable = errors.New("not a DT table image: no 0xd7b7ab1e magic")

const (
	dtTableMagic  = 0xd7b7ab1e
	dtHeaderSize  = 32
	dtEntrySize   = 32
	maxDTEntries  = 4096
	dtTableFormat = "android DT table image (mkdtboimg, magic d7b7ab1e)"
)

// DTEntry is one device-tree blob of a DT table.
type DTEntry struct {
	Size, Offset uint32
	ID, Rev      uint32
	Custom       [4]uint32
}

// DTTable is a decoded mkdtboimg DT table (dtb.img, dtbo.img).
type DTTable struct {
	TotalSize, HeaderSize, EntrySize uint32
	EntriesOffset, PageSize, Version uint32
	Entries                          []DTEntry
}

// Format names the DT table format as `image info` prints it.
func (*DTTable) Format() string { return dtTableFormat }

// OpenDTTable decodes the DT table header and entries of data of the given size.
func OpenDTTable(r io.ReaderAt, size int64) (*DTTable, error) {
	h := make([]byte, dtHeaderSize)
	if size < dtHeaderSize {
		return nil, ErrNotDTTable
	}
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("reading DT table header: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(h) != dtTableMagic {
		return nil, ErrNotDTTable
	}
	t := &DTTable{TotalSize: be.Uint32(h[4:]), HeaderSize: be.Uint32(h[8:]), EntrySize: be.Uint32(h[12:]),
		EntriesOffset: be.Uint32(h[20:]), PageSize: be.Uint32(h[24:]), Version: be.Uint32(h[28:])}
	count := be.Uint32(h[16:])
	switch {
	case int64(t.TotalSize) > size:
		return nil, fmt.Errorf("reading DT table header: total_size %d exceeds the %d-byte image: %w", t.TotalSize, size, ErrCorrupt)
	case t.EntrySize < dtEntrySize || count > maxDTEntries ||
		uint64(t.EntriesOffset)+uint64(count)*uint64(t.EntrySize) > uint64(t.TotalSize):
		return nil, fmt.Errorf("reading DT table header: %d entries of %d bytes at offset %d do not fit total_size %d: %w", count, t.EntrySize, t.EntriesOffset, t.TotalSize, ErrCorrupt)
	}
	// Only the first dtEntrySize bytes of each entry are decoded: read those, so that a hostile
	// entry_size (bounded by the image size only) cannot make the table cost its size in memory.
	e := make([]byte, dtEntrySize)
	for i := 0; i < int(count); i++ {
		at := int64(t.EntriesOffset) + int64(i)*int64(t.EntrySize)
		if _, err := r.ReadAt(e, at); err != nil {
			return nil, fmt.Errorf("reading DT table entry %d at offset %d: %w", i, at, err)
		}
		d := DTEntry{Size: be.Uint32(e), Offset: be.Uint32(e[4:]), ID: be.Uint32(e[8:]), Rev: be.Uint32(e[12:])}
		for j := range d.Custom {
			d.Custom[j] = be.Uint32(e[16+4*j:])
		}
		if uint64(d.Offset)+uint64(d.Size) > uint64(t.TotalSize) {
			return nil, fmt.Errorf("reading DT table entry %d at offset %d: blob %d+%d runs past total_size %d: %w", i, at, d.Offset, d.Size, t.TotalSize, ErrCorrupt)
		}
		t.Entries = append(t.Entries, d)
	}
	return t, nil
}
