package image

import (
	"context"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/factoryzip"
	"github.com/provkit/provkit/firmware/layout"
	"github.com/provkit/provkit/firmware/payload"
	"github.com/provkit/provkit/firmware/super"
)

// Kind names what the input is.
type Kind string

// Input kinds.
const (
	KindDirectory  Kind = "directory"
	KindFactoryZip Kind = "factory zip"
	KindImageZip   Kind = "image zip"
	KindOTAZip     Kind = "OTA zip"
	KindPayload    Kind = "payload"
	KindSuper      Kind = "super image"
	KindPartition  Kind = "partition image"
)

// Format names what a partition's bytes hold.
type Format string

// Formats, found by magic numbers.
const (
	FormatExt4       Format = "ext4"
	FormatEROFS      Format = "erofs"
	FormatSuper      Format = "super"
	FormatVBMeta     Format = "vbmeta"
	FormatBoot       Format = "boot"
	FormatVendorBoot Format = "vendor_boot"
	FormatDTTable    Format = "dt-table"
	FormatSparse     Format = "sparse" // only when the sparse image itself cannot be read
	FormatSquashFS   Format = "squashfs"
	FormatF2FS       Format = "f2fs"
	FormatEmpty      Format = "empty"
	FormatRaw        Format = "raw"
)

// Errors callers can test with errors.Is.
var (
	ErrNoPartition  = errors.New("no such partition")
	ErrNoFileSystem = errors.New("the partition holds no file system provkit reads")
	ErrUnsupported  = errors.New("format recognised but not readable")
	ErrNotFirmware  = errors.New("not a firmware image")
	ErrTooDeep      = errors.New("containers nested too deeply")
	errSingleOnly   = errors.New("a partition name can only be given for a single partition image")
)

// Layers, as Partition.Layers names them.
const (
	layerZipEntry  = "zip entry"
	layerExtracted = "extracted"
	layerPayload   = "payload"
	layerSuper     = "super"
	layerSparse    = "sparse"
)

// maxNesting bounds containers inside containers (a sparse super image holds logical partitions
// that may be sparse again).
const maxNesting = 4

var (
	imageExtensions = []string{".img", ".simg"}
	knownSlotSuffix = []string{"_a", "_b"}
)

// Options changes how Open reads an input.
type Options struct {
	// Partition names a single partition image (default: its file name without extension and
	// slot suffix: system.img and system_a.img are "system"). Refused for other inputs. A single
	// file in no recognised format is opened as a raw partition only when Partition is set;
	// otherwise Open fails with ErrNotFirmware.
	Partition string
	// Slot selects the A/B slot ("a" or "b"); default: the slot whose partitions hold data, a
	// when both or neither do.
	Slot string
	// TempDir and MaxExtract are passed to firmware/factoryzip for deflated zip entries.
	TempDir    string
	MaxExtract int64
}

// Image is an opened input.
type Image struct {
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Size is the input file's size (0 for a directory).
	Size int64 `json:"size"`
	// Slot is the selected A/B slot, "" when no partition is slot-suffixed.
	Slot       string       `json:"slot,omitempty"`
	Partitions []*Partition `json:"partitions"`
	// Notes are observations that change nothing but a reader should know (a partition provided
	// twice, files skipped in a directory).
	Notes []string `json:"notes,omitempty"`
	// AndroidInfo is the factory zip's android-info.txt; OTAMetadata the OTA zip's
	// META-INF/com/android/metadata.
	AndroidInfo *factoryzip.AndroidInfo `json:"androidInfo,omitempty"`
	OTAMetadata map[string]string       `json:"otaMetadata,omitempty"`

	ctx     context.Context
	opts    Options
	closers []io.Closer
	mu      sync.Mutex
}

// Partition is one partition of the input.
type Partition struct {
	// Name is the partition name without slot suffix: system, product, vbmeta_system, boot.
	Name string `json:"name"`
	Slot string `json:"slot,omitempty"`
	// Active is false for the other slot's partitions.
	Active bool `json:"active"`
	// Source says where the bytes are: "system.img", "super.img!system_a",
	// "image-oriole-x.zip!system.img", "payload.bin!system".
	Source string   `json:"source"`
	Layers []string `json:"layers,omitempty"`
	Format Format   `json:"format,omitempty"`
	// Size is the partition's size in bytes (expanded, for a sparse image).
	Size int64 `json:"size"`
	// Detail describes the content in a few words ("ext4, 4096-byte blocks, 20 features").
	Detail string `json:"detail,omitempty"`
	// Footer is the AVB footer at the end of the partition, if any.
	Footer *avb.Footer `json:"avbFooter,omitempty"`
	// Pending is true until a deferred partition (a deflated zip entry) is loaded.
	Pending bool `json:"pending,omitempty"`
	// Err says why the partition's content cannot be read (nil when it can).
	Err error `json:"-"`

	im     *Image
	r      io.ReaderAt
	fsys   fs.FS
	loader func() (io.ReaderAt, int64, error)
	once   sync.Once
}

// ReaderAt returns the partition's bytes (loading a deferred partition first).
func (p *Partition) ReaderAt() (io.ReaderAt, int64, error) {
	p.load()
	if p.r == nil {
		if p.Err != nil {
			return nil, 0, p.Err
		}
		return nil, 0, fmt.Errorf("reading %s: no data", p.Source)
	}
	return p.r, p.Size, nil
}

// FS returns the partition's file system (loading a deferred partition first).
func (p *Partition) FS() (fs.FS, error) {
	p.load()
	if p.fsys != nil {
		return p.fsys, nil
	}
	if p.Err != nil {
		return nil, p.Err
	}
	return nil, fmt.Errorf("partition %s (%s) is %s: %w", p.Name, p.Source, p.Format, ErrNoFileSystem)
}

// HasFS reports whether the partition is loaded and holds a readable file system.
func (p *Partition) HasFS() bool { return p.fsys != nil }

// Loaded reports whether a deferred partition has been loaded (always true for the others).
func (p *Partition) Loaded() bool { return !p.Pending }

func (p *Partition) load() {
	p.once.Do(func() {
		if p.loader == nil {
			return
		}
		r, size, err := p.loader()
		p.Pending = false
		if err != nil {
			p.Err = err
			return
		}
		p.Size = size
		children := p.im.probe(p, r, size, 0)
		if len(children) > 0 {
			p.im.mu.Lock()
			p.im.Partitions = append(p.im.Partitions, children...)
			p.im.mu.Unlock()
			p.im.selectSlot()
		}
	})
}

// ctxReaderAt stops reading once ctx is done, so Ctrl-C interrupts a long read.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c *ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// Open opens the input at path. Reads through the returned Image fail once ctx is done. Close it
// when done. An input that cannot be read at all is an error; a container whose partitions cannot
// all be read opens, with Partition.Err saying which and why.
func Open(ctx context.Context, path string, opts *Options) (*Image, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Slot != "" && o.Slot != "a" && o.Slot != "b" {
		return nil, fmt.Errorf("slot %q: want a or b", o.Slot)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	im := &Image{Path: path, ctx: ctx, opts: o}
	if st.IsDir() {
		if o.Partition != "" {
			return nil, fmt.Errorf("opening %s: %w (this is a directory: each image is named by its file)", path, errSingleOnly)
		}
		err = im.openDir(path)
	} else {
		err = im.openFile(path)
	}
	if err != nil {
		im.Close()
		return nil, err
	}
	im.selectSlot()
	im.noteDuplicates()
	return im, nil
}

// Close releases the files and extracted entries.
func (im *Image) Close() error {
	var errs []error
	for i := len(im.closers) - 1; i >= 0; i-- {
		if err := im.closers[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	im.closers = nil
	return errors.Join(errs...)
}

func (im *Image) openOSFile(path string) (io.ReaderAt, int64, error) {
	f, err := safeopen.OpenImage(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening image: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("reading %s: not a regular file", path)
	}
	im.closers = append(im.closers, f)
	return &ctxReaderAt{ctx: im.ctx, r: f}, st.Size(), nil
}

func (im *Image) openDir(dir string) error {
	im.Kind = KindDirectory
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	var skipped []string
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		isImage := false
		for _, x := range imageExtensions {
			isImage = isImage || ext == x
		}
		if !isImage || e.IsDir() {
			if !e.IsDir() {
				skipped = append(skipped, name)
			}
			continue
		}
		r, size, err := im.openOSFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		pname, slot := partitionName(name)
		p := im.newPartition(pname, slot, name, nil)
		p.Size = size
		im.Partitions = append(im.Partitions, p)
		im.Partitions = append(im.Partitions, im.probe(p, r, size, 0)...)
	}
	if len(skipped) > 0 {
		im.Notes = append(im.Notes, fmt.Sprintf("not partition images (no .img/.simg extension), skipped: %s", strings.Join(skipped, ", ")))
	}
	if len(im.Partitions) == 0 {
		return fmt.Errorf("reading directory %s: no partition images (*.img, *.simg): %w", dir, ErrNotFirmware)
	}
	return nil
}

func (im *Image) openFile(path string) error {
	r, size, err := im.openOSFile(path)
	if err != nil {
		return err
	}
	return im.openReader(path, r, size)
}

// openReader reads an input file of the given size: a zip, a payload, or a single image.
func (im *Image) openReader(path string, r io.ReaderAt, size int64) error {
	im.Size = size
	head := make([]byte, 4)
	if size >= 4 {
		if _, err := r.ReadAt(head, 0); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	base := filepath.Base(path)
	switch {
	case string(head) == "PK\x03\x04" || string(head) == "PK\x05\x06":
		if im.opts.Partition != "" {
			return fmt.Errorf("opening %s: %w (this is a zip archive)", path, errSingleOnly)
		}
		return im.openZip(path, base, r, size)
	case string(head) == "CrAU":
		if im.opts.Partition != "" {
			return fmt.Errorf("opening %s: %w (this is an OTA payload)", path, errSingleOnly)
		}
		pl, err := payload.Open(r, size)
		if err != nil {
			return fmt.Errorf("reading payload %s: %w", path, err)
		}
		im.Kind = KindPayload
		im.addPayload(pl, base, nil)
		return nil
	}
	name, slot := im.opts.Partition, ""
	if name == "" {
		name, slot = partitionName(base)
	} else {
		name, slot = splitSlot(name)
	}
	p := im.newPartition(name, slot, base, nil)
	p.Size = size
	children := im.probe(p, r, size, 0)
	if p.Err != nil {
		return p.Err
	}
	if p.Format == FormatRaw && len(p.Layers) == 0 && p.Footer == nil && im.opts.Partition == "" {
		// A single file in no known format is far more often a mistake (a policy, a log, an
		// image whose superblock was overwritten) than a raw partition: only Options.Partition
		// says it is one. (In a directory or a container, raw partitions are expected.)
		return fmt.Errorf("opening %s: %w: no sparse, ext4, EROFS, super, vbmeta, boot, zip or payload magic at offset 0", path, ErrNotFirmware)
	}
	im.Kind = KindPartition
	if p.Format == FormatSuper {
		im.Kind = KindSuper
		if im.opts.Partition != "" {
			return fmt.Errorf("opening %s: %w (this is a super image; its logical partitions are named by its metadata)", path, errSingleOnly)
		}
	}
	im.Partitions = append(append(im.Partitions, p), children...)
	return nil
}

func (im *Image) openZip(path, base string, r io.ReaderAt, size int64) error {
	ota, err := payload.OpenOTA(r, size)
	if err == nil {
		im.Kind = KindOTAZip
		im.OTAMetadata = ota.Metadata
		im.addPayload(ota.Payload, base+"!"+payload.PayloadEntry, []string{layerZipEntry})
		return nil
	}
	if !errors.Is(err, payload.ErrNotOTA) {
		return fmt.Errorf("reading OTA zip %s: %w", path, err)
	}
	a, err := factoryzip.Open(r, size, &factoryzip.Options{TempDir: im.opts.TempDir, MaxExtract: im.opts.MaxExtract})
	if err != nil {
		if errors.Is(err, factoryzip.ErrNotFactoryZip) {
			return fmt.Errorf("reading %s: a zip archive with neither payload.bin (OTA) nor partition images (factory or image zip): %w", path, ErrNotFirmware)
		}
		return fmt.Errorf("reading factory zip %s: %w", path, err)
	}
	im.closers = append(im.closers, a)
	im.Kind = KindFactoryZip
	if a.ImageZip == "" {
		im.Kind = KindImageZip
	}
	im.AndroidInfo = a.AndroidInfo
	entries := append([]factoryzip.Entry{}, a.Images...)
	for _, e := range a.Files {
		if strings.HasSuffix(e.Name, ".img") {
			entries = append(entries, e)
		}
	}
	for i := range entries {
		e := entries[i]
		name, slot := splitSlot(e.Partition)
		layers := []string{layerZipEntry}
		if e.Compressed {
			layers = append(layers, layerExtracted)
		}
		p := im.newPartition(name, slot, base+"!"+e.Path, layers)
		p.Size = e.Size
		open := func() (io.ReaderAt, int64, error) {
			rd, err := a.OpenEntry(&e)
			if err != nil {
				return nil, 0, fmt.Errorf("reading %s: %w", p.Source, err)
			}
			return &ctxReaderAt{ctx: im.ctx, r: rd}, rd.Size(), nil
		}
		im.Partitions = append(im.Partitions, p)
		if e.Compressed && name != "super" {
			// Deflated: decompress only when the partition is used (Load).
			p.loader, p.Pending = open, true
			continue
		}
		rd, sz, err := open()
		if err != nil {
			p.Err = err
			continue
		}
		im.Partitions = append(im.Partitions, im.probe(p, rd, sz, 0)...)
	}
	if len(im.Partitions) == 0 {
		return fmt.Errorf("reading %s: no partition images in the zip: %w", path, ErrNotFirmware)
	}
	return nil
}

func (im *Image) addPayload(pl *payload.Payload, source string, layers []string) {
	layers = append(append([]string{}, layers...), layerPayload)
	for _, pu := range pl.Manifest.Partitions {
		name, slot := splitSlot(pu.Name)
		p := im.newPartition(name, slot, source+"!"+pu.Name, layers)
		if pu.New != nil {
			p.Size = int64(pu.New.Size)
		}
		im.Partitions = append(im.Partitions, p)
		pr, err := pl.OpenPartition(pu.Name)
		if err != nil {
			p.Err = fmt.Errorf("reading %s: %w", p.Source, err)
			p.Detail = pu.OpCounts()
			continue
		}
		im.Partitions = append(im.Partitions, im.probe(p, pr, pr.Size(), 0)...)
	}
}

func (im *Image) newPartition(name, slot, source string, layers []string) *Partition {
	return &Partition{Name: name, Slot: slot, Source: source, Layers: append([]string{}, layers...), Active: true, im: im}
}

// partitionName derives a partition name from a file name: "system.img" -> system,
// "system_b.img" -> system slot b, "test_file.bin.sparse" -> test_file.
func partitionName(file string) (name, slot string) {
	base := filepath.Base(file)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return splitSlot(base)
}

func splitSlot(name string) (string, string) {
	for _, s := range knownSlotSuffix {
		if rest, ok := strings.CutSuffix(name, s); ok && rest != "" {
			return rest, s[1:]
		}
	}
	return name, ""
}

// selectSlot picks the active slot and marks the partitions of the other one inactive.
func (im *Image) selectSlot() {
	im.mu.Lock()
	defer im.mu.Unlock()
	data := map[string]int{}
	slotted := false
	for _, p := range im.Partitions {
		if p.Slot != "" {
			slotted = true
			if p.Size > 0 {
				data[p.Slot]++
			}
		}
	}
	if !slotted {
		im.Slot = ""
		return
	}
	switch {
	case im.opts.Slot != "":
		im.Slot = im.opts.Slot
	case data["a"] == 0 && data["b"] > 0:
		im.Slot = "b"
	default:
		im.Slot = "a"
	}
	for _, p := range im.Partitions {
		p.Active = p.Slot == "" || p.Slot == im.Slot
	}
}

// noteDuplicates records partitions provided more than once in the active slot.
func (im *Image) noteDuplicates() {
	seen := map[string][]string{}
	var order []string
	for _, p := range im.Partitions {
		if !p.Active || p.Format == FormatEmpty {
			continue
		}
		if _, ok := seen[p.Name]; !ok {
			order = append(order, p.Name)
		}
		seen[p.Name] = append(seen[p.Name], p.Source)
	}
	for _, n := range order {
		if srcs := seen[n]; len(srcs) > 1 {
			best := im.Lookup(n)
			im.Notes = append(im.Notes, fmt.Sprintf("partition %s is provided %d times (%s); using %s", n, len(srcs), strings.Join(srcs, ", "), best.Source))
		}
	}
}

// Lookup returns the active partition called name (without slot suffix). When several provide it,
// a partition image of its own wins over a logical partition of a super image, and one with data
// over an empty one. Nil when there is none.
func (im *Image) Lookup(name string) *Partition {
	im.mu.Lock()
	defer im.mu.Unlock()
	var best *Partition
	score := func(p *Partition) int {
		s := 0
		if p.Format != FormatEmpty {
			s += 4
		}
		if !contains(p.Layers, layerSuper) {
			s += 2
		}
		if p.Err == nil {
			s++
		}
		return s
	}
	for _, p := range im.Partitions {
		if p.Name != name || !p.Active {
			continue
		}
		if best == nil || score(p) > score(best) {
			best = p
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Names returns the names of the active partitions, sorted, each once.
func (im *Image) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range im.Partitions {
		if p.Active && !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Partition returns the active partition called name, or an error naming the partitions there are.
func (im *Image) Partition(name string) (*Partition, error) {
	p := im.Lookup(name)
	if p == nil {
		return nil, fmt.Errorf("%s has no partition %q (it has: %s): %w", im.Path, name, strings.Join(im.Names(), ", "), ErrNoPartition)
	}
	return p, nil
}

// Load loads deferred partitions (deflated zip entries): the named ones, or all when names is
// empty. It returns the errors of the named partitions that could not be read.
func (im *Image) Load(names ...string) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var errs []error
	for _, p := range append([]*Partition{}, im.Partitions...) {
		if len(names) > 0 && !want[p.Name] {
			continue
		}
		if !p.Active {
			continue
		}
		p.load()
		if err := im.ctx.Err(); err != nil {
			return err
		}
		if len(names) > 0 && p.Err != nil && im.Lookup(p.Name) == p {
			errs = append(errs, p.Err)
		}
	}
	im.noteDuplicatesOnce()
	return errors.Join(errs...)
}

func (im *Image) noteDuplicatesOnce() {
	// Notes from Open stay; duplicates found later (a deferred super image) are added once.
	have := map[string]bool{}
	for _, n := range im.Notes {
		have[n] = true
	}
	before := im.Notes
	im.Notes = nil
	im.noteDuplicates()
	added := im.Notes
	im.Notes = before
	for _, n := range added {
		if !have[n] {
			im.Notes = append(im.Notes, n)
		}
	}
}

// FileSystems returns the file system of every loaded, active partition that has one, keyed by
// partition name (one per name, as Lookup chooses).
func (im *Image) FileSystems() map[string]fs.FS {
	out := map[string]fs.FS{}
	for _, n := range im.Names() {
		p := im.Lookup(n)
		if p != nil && p.Loaded() && p.fsys != nil {
			out[n] = p.fsys
		}
	}
	return out
}

// Resolve maps a path as `provkit image ls/cat` take it to a file system and a path inside it.
// "partition:/path" names a partition's own file system ("system:/system/build.prop" on a
// system-as-root image); "/system/app/X" is a device path, placed by firmware/layout
// (system-as-root, nested partitions). It returns the partition that holds the file, the file
// system and the path in it ("." for its root). Deferred partitions are loaded as needed.
func (im *Image) Resolve(p string) (partition string, fsys fs.FS, inner string, err error) {
	if name, rest, ok := strings.Cut(p, ":"); ok && !strings.Contains(name, "/") {
		part, err := im.Partition(name)
		if err != nil {
			return "", nil, "", err
		}
		fsys, err := part.FS()
		if err != nil {
			return "", nil, "", err
		}
		return name, fsys, cleanInner(rest), nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", nil, "", fmt.Errorf("path %q: give a device path (/system/app/X) or partition:/path (system:/build.prop)", p)
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	names := []string{first}
	if im.Lookup(first) == nil {
		names = append(names, "system", "vendor") // nested /product, /system_ext, /vendor, /odm
	}
	if err := im.Load(names...); err != nil {
		return "", nil, "", err
	}
	t := layout.New(im.FileSystems())
	part, inner, err := t.Resolve(p)
	if err != nil {
		if pp := im.Lookup(first); pp != nil {
			if _, ferr := pp.FS(); ferr != nil {
				return "", nil, "", ferr
			}
		}
		return "", nil, "", err
	}
	fsys, _ = t.FS(part)
	return part, fsys, inner, nil
}

func cleanInner(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Unsupported reports whether err means the partition is well formed but provkit cannot read its
// content (squashfs, f2fs, a delta payload that needs the source build, an EROFS feature provkit
// does not implement, a retrofit super image whose other block devices were not given), as
// opposed to a corrupt or unreadable input.
func Unsupported(err error) bool {
	return errors.Is(err, ErrUnsupported) || errors.Is(err, payload.ErrDeltaPayload) ||
		errors.Is(err, erofs.ErrUnsupported) || errors.Is(err, super.ErrMissingBlockDevice) ||
		errors.Is(err, payload.ErrUnsupported)
}
