package apk

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sort"
	"strings"
)

// FormatError reports a structural defect of an APK at a byte offset. It is never an I/O error: the
// bytes were read, and they are wrong.
type FormatError struct {
	Offset int64  // offset in the file where the defect is, -1 when it has no single place
	Msg    string // what is wrong
}

func (e *FormatError) Error() string {
	if e.Offset < 0 {
		return e.Msg
	}
	return fmt.Sprintf("%s (at offset %d)", e.Msg, e.Offset)
}

// ErrMalformed is matched by every *FormatError with errors.Is.
var ErrMalformed = errors.New("malformed APK")

func (e *FormatError) Is(target error) bool { return target == ErrMalformed }

func formatErr(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

const (
	eocdSig          = 0x06054b50
	eocdMinSize      = 22
	zip64LocatorSig  = 0x07064b50
	zip64LocatorSize = 20
	zip64EOCDSig     = 0x06064b50
	cdRecordSig      = 0x02014b50
	cdRecordMinSize  = 46
	lfhSig           = 0x04034b50
	lfhSize          = 30
	dataDescSig      = 0x08074b50
	flagDataDesc     = 0x08
	flagEncrypted    = 0x01
	methodStored     = 0
	methodDeflated   = 8
	maxCDSize        = 64 << 20 // a central directory larger than this is refused (memory bound)
	maxCommentLen    = 0xffff
)

// zipArchive is a ZIP archive read through an io.ReaderAt with apksig's strictness. Opening it
// parses the EOCD and the central directory and checks every entry's local header against its CD
// record; entry data is read only when an entry is opened.
type zipArchive struct {
	r    io.ReaderAt
	size int64

	eocdOffset int64  // offset of the EOCD (of the ZIP64 EOCD record when the archive is ZIP64)
	eocd       []byte // EOCD bytes through the end of the file (ZIP64 record + locator + EOCD when ZIP64)
	zip64      bool
	cdOffset   int64
	cdSize     int64

	all     []*zipEntry // every CD record in CD order, directories included
	entries []*zipEntry // CD order without directory entries (what apksig looks at)
}

// zipEntry is one central-directory record, checked against its local file header.
type zipEntry struct {
	a          *zipArchive
	index      int
	name       string
	cdOffset   int64 // offset of the CD record in the file
	flags      uint16
	method     uint16
	crc        uint32
	csize      uint64
	usize      uint64
	lfhOffset  int64
	dataOffset int64 // start of the entry's data, known after the local header is read
	recordEnd  int64 // end of data (and data descriptor)
	broken     error // a defect found in its local record: the entry cannot be opened
}

func (e *zipEntry) Name() string             { return e.name }
func (e *zipEntry) UncompressedSize() uint64 { return e.usize }

// Open returns the entry's uncompressed bytes. Reading fails (never truncates silently) when the
// data is longer or shorter than the declared size or when the CRC-32 does not match; it never
// inflates beyond the declared size.
func (e *zipEntry) Open() (io.ReadCloser, error) {
	if e.broken != nil {
		return nil, e.broken
	}
	if e.dataOffset == 0 {
		return nil, formatErr(e.lfhOffset, "entry %q: local header not checked", e.name)
	}
	sr := io.NewSectionReader(e.a.r, e.dataOffset, int64(e.csize))
	var src io.Reader
	var closer io.Closer
	if e.method == methodStored {
		src = sr
	} else {
		// Like apksig (and Android), every method other than STORED is read as DEFLATE.
		fr := flate.NewReader(bufio.NewReaderSize(sr, 32<<10))
		src, closer = fr, fr
	}
	return &checkedReader{e: e, src: src, closer: closer, crc: crc32.NewIEEE()}, nil
}

// readAll reads a whole entry, refusing entries larger than limit.
func (e *zipEntry) readAll(limit uint64) ([]byte, error) {
	if e.usize > limit {
		return nil, formatErr(e.lfhOffset, "entry %q is too large: %d bytes (limit %d)", e.name, e.usize, limit)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, e.usize)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, err
	}
	// Reach EOF so that trailing data and the CRC are checked.
	var one [1]byte
	if n, err := rc.Read(one[:]); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = formatErr(e.dataOffset, "entry %q is longer than its declared size %d", e.name, e.usize)
		}
		return nil, err
	}
	return buf, nil
}

type checkedReader struct {
	e      *zipEntry
	src    io.Reader
	closer io.Closer
	crc    hash.Hash32
	n      uint64
	done   bool
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	left := c.e.usize - c.n
	if uint64(len(p)) > left+1 {
		p = p[:left+1] // read at most one byte past the declared size, to detect overlong data
	}
	n, err := c.src.Read(p)
	if uint64(n) > left {
		return 0, formatErr(c.e.dataOffset, "entry %q inflates beyond its declared size %d", c.e.name, c.e.usize)
	}
	c.n += uint64(n)
	c.crc.Write(p[:n])
	if err == io.EOF {
		if c.n != c.e.usize {
			return n, formatErr(c.e.dataOffset, "entry %q is shorter (%d bytes) than its declared size %d", c.e.name, c.n, c.e.usize)
		}
		if c.crc.Sum32() != c.e.crc {
			return n, formatErr(c.e.dataOffset, "entry %q CRC-32 mismatch: computed %08x, declared %08x", c.e.name, c.crc.Sum32(), c.e.crc)
		}
		c.done = true
		return n, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || isFlateError(err) {
			return n, formatErr(c.e.dataOffset, "entry %q has corrupt compressed data: %v", c.e.name, err)
		}
		return n, fmt.Errorf("reading entry %q: %w", c.e.name, err)
	}
	// At the declared size the next Read checks for EOF, data past it and the CRC.
	return n, nil
}

func isFlateError(err error) bool {
	var ce flate.CorruptInputError
	var ie flate.InternalError
	return errors.As(err, &ce) || errors.As(err, &ie)
}

func (c *checkedReader) Close() error {
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

// entry returns the non-directory entry with that name, or nil.
func (a *zipArchive) entry(name string) *zipEntry {
	for _, e := range a.entries {
		if e.name == name {
			return e
		}
	}
	return nil
}

func readAt(r io.ReaderAt, off int64, n int, what string) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, formatErr(off, "%s: file ends early", what)
		}
		return nil, fmt.Errorf("reading %s at offset %d: %w", what, off, err)
	}
	return buf, nil
}

// findEOCD locates the End of Central Directory record the way apksig does: the record whose
// comment runs exactly to the end of the file, searched backwards over at most 65535 comment bytes.
// Data after the EOCD therefore makes the record unfindable, which is how trailing bytes are
// rejected. Like apksig it first reads only the last 22 bytes: APKs almost never carry a comment,
// and the 64 KiB search window is then not read at all (an image audit opens every APK it finds).
func findEOCD(r io.ReaderAt, size int64) (int64, []byte, error) {
	if size < eocdMinSize {
		return 0, nil, formatErr(-1, "not a ZIP archive: %d bytes is smaller than an End of Central Directory record", size)
	}
	tail, err := readAt(r, size-eocdMinSize, eocdMinSize, "End of Central Directory record")
	if err != nil {
		return 0, nil, err
	}
	if binary.LittleEndian.Uint32(tail) == eocdSig && binary.LittleEndian.Uint16(tail[20:]) == 0 {
		return size - eocdMinSize, tail, nil
	}
	maxComment := int64(maxCommentLen)
	if size-eocdMinSize < maxComment {
		maxComment = size - eocdMinSize
	}
	bufLen := eocdMinSize + maxComment
	bufOff := size - bufLen
	buf, err := readAt(r, bufOff, int(bufLen), "End of Central Directory search window")
	if err != nil {
		return 0, nil, err
	}
	for commentLen := int64(0); commentLen <= maxComment; commentLen++ {
		pos := bufLen - eocdMinSize - commentLen
		if binary.LittleEndian.Uint32(buf[pos:]) != eocdSig {
			continue
		}
		if int64(binary.LittleEndian.Uint16(buf[pos+20:])) == commentLen {
			return bufOff + pos, buf[pos:], nil
		}
	}
	return 0, nil, formatErr(-1, "not a ZIP archive: no End of Central Directory record whose comment ends at the end of the file (trailing data after the archive, or not a ZIP)")
}

// openZip parses the archive's EOCD and central directory. The local headers are checked
// separately (checkLocalHeaders), once the caller knows where the APK Signing Block starts.
func openZip(r io.ReaderAt, size int64) (*zipArchive, error) {
	eocdOff, eocd, err := findEOCD(r, size)
	if err != nil {
		return nil, err
	}
	a := &zipArchive{r: r, size: size, eocdOffset: eocdOff, eocd: eocd}
	le := binary.LittleEndian
	cdOff := int64(le.Uint32(eocd[16:]))
	cdSize := int64(le.Uint32(eocd[12:]))
	count := int64(le.Uint16(eocd[10:]))
	if le.Uint16(eocd[4:]) != 0 || le.Uint16(eocd[6:]) != 0 || le.Uint16(eocd[8:]) != le.Uint16(eocd[10:]) {
		return nil, formatErr(eocdOff, "multi-disk ZIP archives are not supported (disk fields of the End of Central Directory are not zero)")
	}
	if cdOff == 0xffffffff || cdSize == 0xffffffff || count == 0xffff {
		if z, ok, err := readZip64(r, eocdOff, size); err != nil {
			return nil, err
		} else if ok {
			a.zip64 = true
			a.eocdOffset = z.offset
			a.eocd = z.tail
			cdOff, cdSize, count = z.cdOffset, z.cdSize, z.count
		}
	}
	if cdOff < 0 || cdOff > a.eocdOffset {
		return nil, formatErr(a.eocdOffset, "central directory offset %d is beyond the End of Central Directory at %d", cdOff, a.eocdOffset)
	}
	if cdSize < 0 || cdOff+cdSize > a.eocdOffset {
		return nil, formatErr(a.eocdOffset, "central directory (offset %d, size %d) overlaps the End of Central Directory at %d", cdOff, cdSize, a.eocdOffset)
	}
	if cdSize > maxCDSize {
		return nil, formatErr(cdOff, "central directory of %d bytes is larger than the %d bytes provkit accepts", cdSize, maxCDSize)
	}
	if count > cdSize/cdRecordMinSize+1 {
		return nil, formatErr(a.eocdOffset, "End of Central Directory declares %d entries, more than a %d-byte central directory can hold", count, cdSize)
	}
	a.cdOffset, a.cdSize = cdOff, cdSize
	cd, err := readAt(r, cdOff, int(cdSize), "central directory")
	if err != nil {
		return nil, err
	}
	if err := a.parseCD(cd, int(count)); err != nil {
		return nil, err
	}
	return a, nil
}

type zip64Info struct {
	offset                  int64
	tail                    []byte
	cdOffset, cdSize, count int64
}

// readZip64 follows the ZIP64 locator in front of the EOCD, as newer apksig does. ok is false when
// there is no locator (a field merely holds its maximum value).
func readZip64(r io.ReaderAt, eocdOff, size int64) (zip64Info, bool, error) {
	var z zip64Info
	locOff := eocdOff - zip64LocatorSize
	if locOff < 0 {
		return z, false, nil
	}
	loc, err := readAt(r, locOff, zip64LocatorSize, "ZIP64 End of Central Directory locator")
	if err != nil {
		return z, false, err
	}
	le := binary.LittleEndian
	if le.Uint32(loc) != zip64LocatorSig {
		return z, false, nil
	}
	recOff := le.Uint64(loc[8:])
	if recOff > uint64(locOff) || uint64(locOff)-recOff < 56 {
		return z, false, formatErr(locOff, "ZIP64 End of Central Directory record offset %d is out of range", recOff)
	}
	if uint64(size)-recOff > 1<<20 {
		return z, false, formatErr(locOff, "ZIP64 End of Central Directory record at %d is implausibly far from the end of the file", recOff)
	}
	tail, err := readAt(r, int64(recOff), int(uint64(size)-recOff), "ZIP64 End of Central Directory")
	if err != nil {
		return z, false, err
	}
	if le.Uint32(tail) != zip64EOCDSig {
		return z, false, nil
	}
	recLen := le.Uint64(tail[4:]) + 12
	if recLen != uint64(locOff)-recOff {
		return z, false, formatErr(int64(recOff), "ZIP64 End of Central Directory record size %d does not reach its locator", recLen)
	}
	n, cs, co := le.Uint64(tail[32:]), le.Uint64(tail[40:]), le.Uint64(tail[48:])
	if n > 1<<31-1 || cs > 1<<62 || co > 1<<62 {
		return z, false, formatErr(int64(recOff), "ZIP64 End of Central Directory fields out of range")
	}
	return zip64Info{offset: int64(recOff), tail: tail, cdOffset: int64(co), cdSize: int64(cs), count: int64(n)}, true, nil
}

func (a *zipArchive) parseCD(cd []byte, count int) error {
	le := binary.LittleEndian
	pos := 0
	seen := make(map[string]int, count)
	a.all = make([]*zipEntry, 0, count)
	for i := 0; i < count; i++ {
		off := a.cdOffset + int64(pos)
		if len(cd)-pos < cdRecordMinSize {
			return formatErr(off, "central directory record #%d is truncated: %d bytes left of %d", i+1, len(cd)-pos, cdRecordMinSize)
		}
		rec := cd[pos:]
		if le.Uint32(rec) != cdRecordSig {
			return formatErr(off, "central directory record #%d has a bad signature 0x%08x", i+1, le.Uint32(rec))
		}
		nameLen := int(le.Uint16(rec[28:]))
		extraLen := int(le.Uint16(rec[30:]))
		commentLen := int(le.Uint16(rec[32:]))
		recLen := cdRecordMinSize + nameLen + extraLen + commentLen
		if len(rec) < recLen {
			return formatErr(off, "central directory record #%d (%d bytes) extends beyond the central directory", i+1, recLen)
		}
		nameBytes := rec[cdRecordMinSize : cdRecordMinSize+nameLen]
		e := &zipEntry{
			a:         a,
			index:     i,
			name:      string(nameBytes),
			cdOffset:  off,
			flags:     le.Uint16(rec[8:]),
			method:    le.Uint16(rec[10:]),
			crc:       le.Uint32(rec[16:]),
			csize:     uint64(le.Uint32(rec[20:])),
			usize:     uint64(le.Uint32(rec[24:])),
			lfhOffset: int64(le.Uint32(rec[42:])),
		}
		if e.csize == 0xffffffff || e.usize == 0xffffffff || e.lfhOffset == 0xffffffff {
			extra := rec[cdRecordMinSize+nameLen : cdRecordMinSize+nameLen+extraLen]
			lfh := uint64(e.lfhOffset)
			if err := applyZip64Extra(extra, &e.usize, &e.csize, &lfh, e.name, off); err != nil {
				return err
			}
			if lfh > 1<<62 {
				return formatErr(off, "entry %q local header offset %d out of range", e.name, lfh)
			}
			e.lfhOffset = int64(lfh)
		}
		if strings.IndexByte(e.name, 0) >= 0 {
			return formatErr(off, "entry name %q contains a NUL byte", e.name)
		}
		if e.flags&flagEncrypted != 0 {
			return formatErr(off, "entry %q is encrypted", e.name)
		}
		if prev, dup := seen[e.name]; dup {
			return formatErr(off, "duplicate entry %q: central directory records #%d and #%d have the same name", e.name, prev+1, i+1)
		}
		seen[e.name] = i
		a.all = append(a.all, e)
		if !strings.HasSuffix(e.name, "/") {
			a.entries = append(a.entries, e)
		}
		pos += recLen
	}
	return nil
}

// applyZip64Extra reads the ZIP64 extended-information extra field: each 64-bit value is present
// only when the 32-bit field holds 0xffffffff, in the order uncompressed size, compressed size,
// local header offset.
func applyZip64Extra(extra []byte, usize, csize, lfh *uint64, name string, off int64) error {
	le := binary.LittleEndian
	for len(extra) > 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			return formatErr(off, "entry %q extra field 0x%04x of %d bytes exceeds the extra data", name, id, n)
		}
		if id != 1 {
			extra = extra[n:]
			continue
		}
		f := extra[:n]
		for _, p := range []*uint64{usize, csize, lfh} {
			if *p != 0xffffffff {
				continue
			}
			if len(f) < 8 {
				return formatErr(off, "entry %q ZIP64 extra field is missing a value", name)
			}
			*p = le.Uint64(f)
			f = f[8:]
		}
		return nil
	}
	return formatErr(off, "entry %q has a 32-bit field set to 0xffffffff but no ZIP64 extra field", name)
}

// checkLocalHeaders reads every entry's local file header and checks it against the CD record as
// apksig's LocalFileRecord does (name, data-descriptor flag, CRC-32 and sizes when there is no data
// descriptor), plus provkit's own checks: stored entries have equal sizes, every record ends before
// limit (the APK Signing Block, else the central directory), and no two records overlap.
//
// apksig checks a local header only when it reads the entry; provkit checks them all but, so that
// the signature schemes still report what they find, it collects the defects instead of stopping:
// the returned errors each make the APK fail, an entry with a defect cannot be opened, and warnings
// are deviations Android tolerates (a compression method that differs between the local header and
// the central directory: Android uses the central directory's).
func (a *zipArchive) checkLocalHeaders(limit int64) (errs []error, warnings []string, ioErr error) {
	for _, e := range a.all {
		err, warn, ioe := a.checkLocalHeader(e, limit)
		if ioe != nil {
			return nil, nil, ioe
		}
		if warn != "" {
			warnings = append(warnings, warn)
		}
		if err != nil {
			e.broken = err
			errs = append(errs, err)
		}
	}
	// Overlap: sort local records by offset; each must start at or after the end of the previous.
	byOff := make([]*zipEntry, 0, len(a.all))
	for _, e := range a.all {
		if e.broken == nil {
			byOff = append(byOff, e)
		}
	}
	sort.Slice(byOff, func(i, j int) bool { return byOff[i].lfhOffset < byOff[j].lfhOffset })
	for i := 1; i < len(byOff); i++ {
		p, c := byOff[i-1], byOff[i]
		if c.lfhOffset < p.recordEnd {
			err := formatErr(c.lfhOffset, "entries %q and %q overlap: %q starts at %d, before %q ends at %d", p.name, c.name, c.name, c.lfhOffset, p.name, p.recordEnd)
			p.broken, c.broken = err, err
			errs = append(errs, err)
		}
	}
	return errs, warnings, nil
}

func (a *zipArchive) checkLocalHeader(e *zipEntry, limit int64) (fault error, warning string, ioErr error) {
	le := binary.LittleEndian
	hdrEnd := e.lfhOffset + lfhSize + int64(len(e.name))
	if e.lfhOffset < 0 || hdrEnd > limit {
		return formatErr(e.cdOffset, "local file header of %q at offset %d extends beyond the start of the %s at %d", e.name, e.lfhOffset, limitName(a, limit), limit), "", nil
	}
	h, err := readAt(a.r, e.lfhOffset, lfhSize+len(e.name), "local file header of "+e.name)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return err, "", nil
		}
		return nil, "", err
	}
	if le.Uint32(h) != lfhSig {
		return formatErr(e.lfhOffset, "no local file header for entry %q (signature 0x%08x)", e.name, le.Uint32(h)), "", nil
	}
	flags := le.Uint16(h[6:])
	method := le.Uint16(h[8:])
	nameLen := int(le.Uint16(h[26:]))
	extraLen := int64(le.Uint16(h[28:]))
	if (flags&flagDataDesc != 0) != (e.flags&flagDataDesc != 0) {
		return formatErr(e.lfhOffset, "data descriptor flag of %q differs between local header and central directory", e.name), "", nil
	}
	if nameLen != len(e.name) || string(h[lfhSize:lfhSize+nameLen]) != e.name {
		got := string(h[lfhSize:min(lfhSize+nameLen, len(h))])
		return formatErr(e.lfhOffset, "entry name differs between local header (%q) and central directory (%q)", got, e.name), "", nil
	}
	if e.method != methodStored && e.method != methodDeflated {
		warning = fmt.Sprintf("entry %q declares compression method %d at offset %d; Android reads it as DEFLATE", e.name, e.method, e.cdOffset)
	}
	if method != e.method {
		warning = fmt.Sprintf("compression method of %q differs between local header (%d) and central directory (%d) at offset %d; Android uses the central directory's", e.name, method, e.method, e.lfhOffset)
	}
	if flags&flagDataDesc == 0 {
		crc := le.Uint32(h[14:])
		cs, us := uint64(le.Uint32(h[18:])), uint64(le.Uint32(h[22:]))
		if crc != e.crc {
			return formatErr(e.lfhOffset, "CRC-32 of %q differs between local header (%08x) and central directory (%08x)", e.name, crc, e.crc), warning, nil
		}
		if cs == 0xffffffff || us == 0xffffffff {
			extra, err := readAt(a.r, hdrEnd, int(extraLen), "local header extra field of "+e.name)
			if err != nil {
				if errors.Is(err, ErrMalformed) {
					return err, warning, nil
				}
				return nil, "", err
			}
			var dummy uint64
			if err := applyZip64Extra(extra, &us, &cs, &dummy, e.name, e.lfhOffset); err != nil {
				return err, warning, nil
			}
		}
		if cs != e.csize || us != e.usize {
			return formatErr(e.lfhOffset, "sizes of %q differ between local header (%d/%d) and central directory (%d/%d)", e.name, cs, us, e.csize, e.usize), warning, nil
		}
	}
	if e.method == methodStored && e.csize != e.usize {
		return formatErr(e.cdOffset, "stored entry %q has compressed size %d different from its size %d", e.name, e.csize, e.usize), warning, nil
	}
	e.dataOffset = hdrEnd + extraLen
	dataSize := e.csize
	if dataSize > uint64(limit) {
		return formatErr(e.lfhOffset, "data of %q (%d bytes) is larger than the archive", e.name, dataSize), warning, nil
	}
	e.recordEnd = e.dataOffset + int64(dataSize)
	if e.recordEnd > limit {
		return formatErr(e.dataOffset, "data of %q (offset %d, %d bytes) extends beyond the start of the %s at %d", e.name, e.dataOffset, dataSize, limitName(a, limit), limit), warning, nil
	}
	if flags&flagDataDesc != 0 {
		ddEnd := e.recordEnd + 12
		if ddEnd <= limit {
			sig, err := readAt(a.r, e.recordEnd, 4, "data descriptor of "+e.name)
			if err != nil {
				if errors.Is(err, ErrMalformed) {
					return err, warning, nil
				}
				return nil, "", err
			}
			if le.Uint32(sig) == dataDescSig {
				ddEnd += 4
			}
		}
		if ddEnd > limit {
			return formatErr(e.recordEnd, "data descriptor of %q extends beyond the start of the %s at %d", e.name, limitName(a, limit), limit), warning, nil
		}
		e.recordEnd = ddEnd
	}
	return nil, warning, nil
}

func limitName(a *zipArchive, limit int64) string {
	if limit == a.cdOffset {
		return "central directory"
	}
	return "APK Signing Block"
}
