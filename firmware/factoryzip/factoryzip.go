package factoryzip

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
)

// Errors callers can test with errors.Is.
var (
	ErrNotFactoryZip = errors.New("not a factory image zip: no image-*.zip or android-info.txt")
	ErrTooLarge      = errors.New("entry exceeds the extraction limit")
	ErrCorrupt       = errors.New("corrupt zip entry")
	ErrNoImage       = errors.New("no such image in the factory zip")
)

// Options controls where and how much Open may extract.
type Options struct {
	// TempDir holds extracted deflated entries (default os.TempDir()).
	TempDir string
	// MemoryLimit: deflated entries up to this size are extracted into memory (default 16 MiB).
	MemoryLimit int64
	// MaxExtract bounds the total bytes extracted from deflated entries (default 64 GiB).
	MaxExtract int64
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = 16 << 20
	}
	if c.MaxExtract == 0 {
		c.MaxExtract = 64 << 30
	}
	return c
}

// Entry is one file of the factory zip that can be opened.
type Entry struct {
	// Name is the base name (system.img, bootloader-oriole-slider-1.2.img, android-info.txt).
	Name string
	// Path is where it is: "image-<device>-<build>.zip!system.img" for nested entries.
	Path string
	// Partition is the partition the image is for: the name without ".img"; "bootloader" and
	// "radio" for bootloader-*.img and radio-*.img.
	Partition string
	Size      int64 // uncompressed size
	// Compressed is true when reading it needs one extraction (deflated entry or deflated image zip).
	Compressed bool

	f      *zip.File
	parent *source
}

// AndroidInfo is the decoded android-info.txt.
type AndroidInfo struct {
	// Require maps each required variable (board, version-bootloader, version-baseband, ...) to its
	// accepted values ("require board=a|b" gives two).
	Require map[string][]string
	// Lines keeps every non-empty line as written.
	Lines []string
}

// ParseAndroidInfo decodes android-info.txt. Unknown lines are kept in Lines.
func ParseAndroidInfo(b []byte) (*AndroidInfo, error) {
	ai := &AndroidInfo{Require: map[string][]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ai.Lines = append(ai.Lines, line)
		rest, ok := strings.CutPrefix(line, "require ")
		if !ok {
			rest, ok = strings.CutPrefix(line, "require-for-product:")
			if ok {
				if _, after, found := strings.Cut(rest, " "); found {
					rest = after
				}
			}
		}
		if !ok {
			continue
		}
		k, v, found := strings.Cut(strings.TrimSpace(rest), "=")
		if !found || k == "" {
			return nil, fmt.Errorf("parsing android-info.txt line %d: %q is not require name=value", n, line)
		}
		ai.Require[k] = append(ai.Require[k], strings.Split(v, "|")...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing android-info.txt: %w", err)
	}
	return ai, nil
}

// Board returns the first required board, or "".
func (ai *AndroidInfo) Board() string {
	if b := ai.Require["board"]; len(b) > 0 {
		return b[0]
	}
	return ""
}

// source is a zip (the outer one or the nested image zip) and what backs its bytes.
type source struct {
	zr   *zip.Reader
	r    io.ReaderAt
	name string // "" for the outer zip
}

// Archive is an opened factory zip.
type Archive struct {
	// Device and Build come from the image zip's name image-<device>-<build>.zip (empty if unnamed).
	Device, Build string
	// ImageZip is the nested image zip's path in the outer zip ("" when Open was given the image zip).
	ImageZip string
	// ImageZipCompressed is true when the nested zip was deflated and had to be extracted.
	ImageZipCompressed bool
	AndroidInfo        *AndroidInfo
	// Images are the partition images of the image zip, sorted by name.
	Images []Entry
	// Files are the other entries of the outer zip: bootloader and radio images, flash scripts.
	Files []Entry

	opts      Options
	mu        sync.Mutex
	extracted map[*zip.File]*Reader
	total     int64
	temps     []*os.File
}

// Open reads a factory zip (or a bare image zip) of the given size. Call Close to release extracted
// data.
func Open(r io.ReaderAt, size int64, opts *Options) (*Archive, error) {
	a := &Archive{opts: opts.withDefaults(), extracted: map[*zip.File]*Reader{}}
	outer, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("reading factory zip: %w", err)
	}
	outerSrc := &source{zr: outer, r: r}
	var inner *zip.File
	for _, f := range outer.File {
		base := path.Base(f.Name)
		if strings.HasPrefix(base, "image-") && strings.HasSuffix(base, ".zip") {
			if inner != nil {
				return nil, fmt.Errorf("reading factory zip: two image zips, %s and %s", inner.Name, f.Name)
			}
			inner = f
		}
	}
	imgSrc := outerSrc
	if inner != nil {
		a.ImageZip = inner.Name
		nameParts := strings.SplitN(strings.TrimSuffix(strings.TrimPrefix(path.Base(inner.Name), "image-"), ".zip"), "-", 2)
		if len(nameParts) == 2 {
			a.Device, a.Build = nameParts[0], nameParts[1]
		}
		rd, err := a.open(&Entry{Name: path.Base(inner.Name), Path: inner.Name, f: inner, parent: outerSrc})
		if err != nil {
			return nil, err
		}
		a.ImageZipCompressed = inner.Method != zip.Store
		zr, err := zip.NewReader(rd, rd.Size())
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("reading nested image zip %s: %w", inner.Name, err)
		}
		imgSrc = &source{zr: zr, r: rd, name: inner.Name}
		for _, f := range outer.File {
			if f == inner || strings.HasSuffix(f.Name, "/") {
				continue
			}
			a.Files = append(a.Files, a.entry(f, outerSrc))
		}
	}
	for _, f := range imgSrc.zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		e := a.entry(f, imgSrc)
		switch {
		case path.Base(f.Name) == "android-info.txt":
			b, err := a.ReadSmall(e, 1<<20)
			if err != nil {
				a.Close()
				return nil, err
			}
			if a.AndroidInfo, err = ParseAndroidInfo(b); err != nil {
				a.Close()
				return nil, err
			}
		case strings.HasSuffix(f.Name, ".img"):
			a.Images = append(a.Images, e)
		case inner == nil:
			a.Files = append(a.Files, e)
		}
	}
	if inner == nil && a.AndroidInfo == nil {
		return nil, ErrNotFactoryZip
	}
	sort.Slice(a.Images, func(i, j int) bool { return a.Images[i].Name < a.Images[j].Name })
	return a, nil
}

func (a *Archive) entry(f *zip.File, src *source) Entry {
	base := path.Base(f.Name)
	part := strings.TrimSuffix(base, ".img")
	switch {
	case strings.HasPrefix(base, "bootloader-") && strings.HasSuffix(base, ".img"):
		part = "bootloader"
	case strings.HasPrefix(base, "radio-") && strings.HasSuffix(base, ".img"):
		part = "radio"
	case !strings.HasSuffix(base, ".img"):
		part = ""
	}
	p := f.Name
	if src.name != "" {
		p = src.name + "!" + f.Name
	}
	return Entry{Name: base, Path: p, Partition: part, Size: int64(f.UncompressedSize64),
		Compressed: f.Method != zip.Store || src.name != "" && a.ImageZipCompressed, f: f, parent: src}
}

// Image returns the image called name (e.g. "system.img") or for partition name (e.g. "system").
func (a *Archive) Image(name string) (*Entry, bool) {
	for i := range a.Images {
		if a.Images[i].Name == name || a.Images[i].Partition == name {
			return &a.Images[i], true
		}
	}
	return nil, false
}

// OpenImage opens an image of the image zip by file or partition name.
func (a *Archive) OpenImage(name string) (*Reader, error) {
	e, ok := a.Image(name)
	if !ok {
		return nil, fmt.Errorf("opening %q: %w", name, ErrNoImage)
	}
	return a.open(e)
}

// OpenEntry opens any listed entry (an image or one of Files).
func (a *Archive) OpenEntry(e *Entry) (*Reader, error) { return a.open(e) }

// ReadSmall reads a whole entry of at most limit bytes.
func (a *Archive) ReadSmall(e Entry, limit int64) ([]byte, error) {
	if e.Size > limit {
		return nil, fmt.Errorf("reading %s: %d bytes exceed %d: %w", e.Path, e.Size, limit, ErrTooLarge)
	}
	rd, err := a.open(&e)
	if err != nil {
		return nil, err
	}
	b := make([]byte, rd.Size())
	if _, err := rd.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading %s: %w", e.Path, err)
	}
	return b, nil
}

// Reader reads one entry at random offsets.
type Reader struct {
	r    io.ReaderAt
	size int64
}

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading zip entry: negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(b)
	if int64(want) > r.size-off {
		b = b[:r.size-off]
	}
	n, err := r.r.ReadAt(b, off)
	if n == len(b) && n < want {
		return n, io.EOF
	}
	if n == len(b) {
		return n, nil
	}
	return n, err
}

// Size returns the entry's uncompressed size.
func (r *Reader) Size() int64 { return r.size }

func (a *Archive) open(e *Entry) (*Reader, error) {
	f := e.f
	if f.Method == zip.Store {
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("locating %s: %w", e.Path, err)
		}
		if f.CompressedSize64 != f.UncompressedSize64 {
			return nil, fmt.Errorf("opening %s: stored entry with compressed size %d != uncompressed size %d: %w", e.Path, f.CompressedSize64, f.UncompressedSize64, ErrCorrupt)
		}
		return &Reader{r: io.NewSectionReader(e.parent.r, off, int64(f.UncompressedSize64)), size: int64(f.UncompressedSize64)}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if rd, ok := a.extracted[f]; ok {
		return rd, nil
	}
	size := int64(f.UncompressedSize64)
	if size < 0 || a.total+size > a.opts.MaxExtract {
		return nil, fmt.Errorf("extracting %s: %d bytes would pass the %d-byte extraction limit: %w", e.Path, f.UncompressedSize64, a.opts.MaxExtract, ErrTooLarge)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", e.Path, err)
	}
	defer rc.Close()
	// The declared size is the limit: one byte more is a lie (or a bomb).
	src := io.LimitReader(rc, size+1)
	var rd *Reader
	if size <= a.opts.MemoryLimit {
		var buf bytes.Buffer
		buf.Grow(int(size))
		n, err := io.Copy(&buf, src)
		if err := checkExtract(e, n, size, err); err != nil {
			return nil, err
		}
		rd = &Reader{r: bytes.NewReader(buf.Bytes()), size: size}
	} else {
		tmp, err := os.CreateTemp(a.opts.TempDir, "provkit-factoryzip-*")
		if err != nil {
			return nil, fmt.Errorf("extracting %s: %w", e.Path, err)
		}
		os.Remove(tmp.Name()) // unlinked now: the data lives only as long as the open file
		a.temps = append(a.temps, tmp)
		n, err := io.Copy(tmp, src)
		if err := checkExtract(e, n, size, err); err != nil {
			return nil, err
		}
		rd = &Reader{r: tmp, size: size}
	}
	a.total += size
	a.extracted[f] = rd
	return rd, nil
}

func checkExtract(e *Entry, n, size int64, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("extracting %s after %d bytes: %w", e.Path, n, err)
	case n > size:
		return fmt.Errorf("extracting %s: inflates past its declared %d bytes: %w", e.Path, size, ErrCorrupt)
	case n < size:
		return fmt.Errorf("extracting %s: %d bytes, %d declared: %w", e.Path, n, size, ErrCorrupt)
	}
	return nil
}

// Close releases extracted entries (closing their unlinked temporary files).
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first error
	for _, t := range a.temps {
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
		os.Remove(t.Name()) // no-op where unlinking an open file already worked
	}
	a.temps = nil
	a.extracted = map[*zip.File]*Reader{}
	return first
}
