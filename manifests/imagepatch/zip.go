package imagepatch

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadZip means the zip input is corrupt, truncated, or holds an entry image patch refuses to
// unpack (a name with "..", an absolute path, an unexpected directory, sizes over the limit, a
// CRC mismatch).
var ErrBadZip = errors.New("bad firmware zip")

// defaultMaxExtract bounds what a zip input may unpack when Options.MaxExtract is 0.
const defaultMaxExtract = 64 << 30

const uint32max = 1<<32 - 1

// isZipFile reports whether the file at p starts with a zip signature.
func isZipFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return string(b[:]) == "PK\x03\x04" || string(b[:]) == "PK\x05\x06"
}

// zipInput is an opened factory zip or image zip.
type zipInput struct {
	path  string
	outer *zip.Reader
	// nested is the image zip's entry in a factory zip (nil when the input is the image zip).
	nested *zip.File
	inner  *zip.Reader
	// label names the image zip in reports: the nested entry's name, or the input's base name.
	label string
	files []*os.File
}

func (z *zipInput) close() {
	for _, f := range z.files {
		f.Close()
	}
}

// where names an entry of the image zip (entry "" names the image zip itself).
func (z *zipInput) where(entry string) string {
	w := z.path
	if z.nested != nil {
		w += "!" + z.nested.Name
	}
	if entry != "" {
		w += "!" + entry
	}
	return w
}

// checkEntryName refuses names that could escape a directory or are not what a firmware zip
// holds. flat: no directories at all (image zip members).
func checkEntryName(name string, flat bool) error {
	switch {
	case name == "" || strings.ContainsAny(name, "\\\x00:") || strings.HasPrefix(name, "/"):
		return fmt.Errorf("entry name %q is empty or absolute, or holds a backslash, colon or NUL", name)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("entry name %q holds a %q path element", name, seg)
		}
	}
	if flat && strings.Contains(name, "/") {
		return fmt.Errorf("entry name %q is in a directory: an image zip holds its images at the top level", name)
	}
	if flat && strings.HasPrefix(name, ".") {
		return fmt.Errorf("entry name %q is a hidden file, which an image zip does not hold", name)
	}
	return nil
}

// checkNames refuses unsafe or repeated names in a zip's directory.
func checkNames(where string, files []*zip.File, flat bool) error {
	seen := map[string]bool{}
	for _, e := range files {
		if err := checkEntryName(e.Name, flat); err != nil {
			return fmt.Errorf("reading %s: %w: %w", where, ErrBadZip, err)
		}
		if seen[e.Name] {
			return fmt.Errorf("reading %s!%s: %w: the name appears twice", where, e.Name, ErrBadZip)
		}
		seen[e.Name] = true
	}
	return nil
}

// openZipInput opens the zip at p and finds its image zip. A deflated nested image zip is
// extracted into work (bounded by its declared size and budget); a stored one is read in place.
func openZipInput(ctx context.Context, p, work string, budget *int64) (*zipInput, error) {
	z := &zipInput{path: p, label: filepath.Base(p)}
	ok := false
	defer func() {
		if !ok {
			z.close()
		}
	}()
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading firmware: %w", err)
	}
	z.files = append(z.files, f)
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if z.outer, err = zip.NewReader(f, st.Size()); err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", p, ErrBadZip, err)
	}
	if err := checkNames(p, z.outer.File, false); err != nil {
		return nil, err
	}
	for _, e := range z.outer.File {
		base := path.Base(e.Name)
		if e.Name == "payload.bin" {
			return nil, fmt.Errorf("patching %s: %w: an OTA zip (payload.bin) is not written; patch the factory zip", p, ErrUnsupported)
		}
		if strings.HasPrefix(base, "image-") && strings.HasSuffix(base, ".zip") && !strings.HasSuffix(e.Name, "/") {
			if z.nested != nil {
				return nil, fmt.Errorf("reading %s: %w: two image zips, %s and %s", p, ErrBadZip, z.nested.Name, e.Name)
			}
			z.nested = e
		}
	}
	if z.nested == nil {
		z.inner = z.outer
	} else {
		e := z.nested
		z.label = e.Name
		var r io.ReaderAt
		size := int64(e.UncompressedSize64)
		if e.Method == zip.Store {
			// read in place; the nested zip's own entries carry CRCs, checked when unpacked
			off, err := e.DataOffset()
			if err != nil {
				return nil, fmt.Errorf("reading %s!%s: %w: %w", p, e.Name, ErrBadZip, err)
			}
			if e.CompressedSize64 != e.UncompressedSize64 || e.UncompressedSize64 > uint64(st.Size()) || off+size > st.Size() {
				return nil, fmt.Errorf("reading %s!%s: %w: stored entry of %d bytes (%d compressed) at offset %d runs past the end of the %d-byte file (truncated?)", p, e.Name, ErrBadZip, e.UncompressedSize64, e.CompressedSize64, off, st.Size())
			}
			r = io.NewSectionReader(f, off, size)
		} else {
			dst := filepath.Join(work, ".image-zip")
			if err := extractEntry(ctx, p, e, dst, budget); err != nil {
				return nil, err
			}
			nf, err := os.Open(dst)
			if err != nil {
				return nil, err
			}
			z.files = append(z.files, nf)
			r = nf
		}
		if z.inner, err = zip.NewReader(r, size); err != nil {
			return nil, fmt.Errorf("reading %s!%s: %w: the nested image zip: %w", p, e.Name, ErrBadZip, err)
		}
	}
	if err := checkNames(z.where(""), z.inner.File, true); err != nil {
		return nil, err
	}
	imgs := 0
	for _, e := range z.inner.File {
		if strings.HasSuffix(e.Name, ".img") {
			imgs++
		}
	}
	if imgs == 0 {
		return nil, fmt.Errorf("reading %s: %w: neither a factory zip (no image-*.zip) nor an image zip (no *.img)", z.where(""), ErrBadZip)
	}
	ok = true
	return z, nil
}

// extractEntry decompresses entry e of the zip named where into dst (created, must not exist),
// reading at most its declared size, which the budget must cover; archive/zip checks the size and
// CRC-32 at the end.
func extractEntry(ctx context.Context, where string, e *zip.File, dst string, budget *int64) error {
	name := where + "!" + e.Name
	if e.UncompressedSize64 > uint64(*budget) {
		return fmt.Errorf("reading %s: %w: it declares %d bytes, over the %d bytes left to unpack (Options.MaxExtract)", name, ErrBadZip, e.UncompressedSize64, *budget)
	}
	*budget -= int64(e.UncompressedSize64)
	rc, err := e.Open()
	if err != nil {
		return fmt.Errorf("reading %s: %w: %w", name, ErrBadZip, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	// one byte more than declared: archive/zip refuses it (a lying header), and so does the check
	n, err := copyCtx(ctx, out, io.LimitReader(rc, int64(e.UncompressedSize64)+1))
	if err == nil && uint64(n) != e.UncompressedSize64 {
		err = fmt.Errorf("%w: %d bytes, not the %d declared", ErrBadZip, n, e.UncompressedSize64)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if !errors.Is(err, ErrBadZip) {
			err = fmt.Errorf("%w: %w", ErrBadZip, err)
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// verifyEntry reads entry e through (decompressing it), so a corrupt entry that would only be
// copied raw is refused too.
func verifyEntry(ctx context.Context, where string, e *zip.File) error {
	if strings.HasSuffix(e.Name, "/") {
		return nil
	}
	rc, err := e.Open()
	if err == nil {
		var n int64
		n, err = copyCtx(ctx, io.Discard, io.LimitReader(rc, int64(min(e.UncompressedSize64, 1<<62))+1))
		rc.Close()
		if err == nil && uint64(n) != e.UncompressedSize64 {
			err = fmt.Errorf("%d bytes, not the %d declared", n, e.UncompressedSize64)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("reading %s!%s: %w: %w", where, e.Name, ErrBadZip, err)
	}
	return nil
}

// copyCtx copies r to w, stopping when ctx is done.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// runZip patches a factory zip or image zip: it unpacks the image zip's members into a
// temporary directory next to the output, runs the directory patch on it, and writes either a
// zip of the input's shape (Out ends in .zip) or the patched image directory.
func runZip(ctx context.Context, o Options) (*Report, error) {
	toZip := strings.HasSuffix(strings.ToLower(o.Out), ".zip")
	parent, prefix := os.TempDir(), "provkit-image-patch-"
	if !o.DryRun {
		prefix = "." + filepath.Base(o.Out) + ".tmp-"
		if _, err := os.Lstat(o.Out); err == nil {
			return nil, fmt.Errorf("writing %s: it exists; image patch never overwrites: choose a new --out", o.Out)
		}
		parent = filepath.Dir(filepath.Clean(o.Out))
	}
	work, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("creating the temporary area: %w", err)
	}
	defer os.RemoveAll(work)
	budget := o.MaxExtract
	if budget <= 0 {
		budget = defaultMaxExtract
	}
	z, err := openZipInput(ctx, o.Input, work, &budget)
	if err != nil {
		return nil, err
	}
	defer z.close()

	// every entry is checked before anything is patched: the image zip's members by unpacking
	// them, the factory zip's others (bootloader, radio, scripts) by reading them through
	stage := filepath.Join(work, "in")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return nil, err
	}
	var declared uint64
	for _, e := range z.inner.File {
		if e.UncompressedSize64 > uint64(budget)-declared { // no wrap-around: declared <= budget
			return nil, fmt.Errorf("reading %s: %w: the members up to this one declare more than the %d bytes left to unpack (Options.MaxExtract; a zip bomb?)", z.where(e.Name), ErrBadZip, budget)
		}
		declared += e.UncompressedSize64
	}
	// at least the unpacked members and an output as large as the input: refused up front
	// rather than failing with ENOSPC half way
	if st, err := os.Stat(o.Input); err == nil {
		need := int64(declared)
		if !o.DryRun && toZip {
			need += st.Size()
		}
		if free, err := freeBytes(work); err == nil && free < need {
			return nil, fmt.Errorf("patching %s: not enough free space in %s: it needs at least %d MiB (the image zip unpacked, and the output), %d MiB are free", o.Input, parent, need>>20, free>>20)
		}
	}
	o.say("unpacking %s (%d MiB)", z.where(""), declared>>20)
	for _, e := range z.inner.File {
		if err := extractEntry(ctx, z.where(""), e, filepath.Join(stage, e.Name), &budget); err != nil {
			return nil, err
		}
	}
	if z.nested != nil {
		for _, e := range z.outer.File {
			if e != z.nested {
				if err := verifyEntry(ctx, o.Input, e); err != nil {
					return nil, err
				}
			}
		}
	}

	inner := o
	inner.Input, inner.Out, inner.staged = stage, filepath.Join(work, "out"), true
	irep, err := Run(ctx, inner)
	// messages name the zip's entries, never the temporary directory
	renamed := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, stage+string(filepath.Separator), z.where("")+"!"), stage, z.where(""))
	}
	if irep != nil {
		irep.Input, irep.Output = o.Input, ""
		for i := range irep.Partitions {
			irep.Partitions[i].File = z.label + "!" + irep.Partitions[i].File
		}
		for i := range irep.Notes {
			irep.Notes[i] = renamed(irep.Notes[i])
		}
		for i := range irep.Blockers {
			irep.Blockers[i] = renamed(irep.Blockers[i])
		}
	}
	if err != nil {
		return irep, &renamedError{err: err, msg: renamed(err.Error())}
	}
	if o.DryRun {
		return irep, nil
	}
	changed := map[string]bool{}
	for _, p := range irep.Partitions {
		file, _, _ := strings.Cut(strings.TrimPrefix(p.File, z.label+"!"), "!")
		changed[file] = true
	}
	patched := filepath.Join(work, "out")

	if !toZip { // the image directory: patched files, and the unpacked ones moved beside them
		for _, e := range z.inner.File {
			if !changed[e.Name] {
				if err := os.Rename(filepath.Join(stage, e.Name), filepath.Join(patched, e.Name)); err != nil {
					return nil, err
				}
			}
		}
		if err := os.Rename(patched, o.Out); err != nil {
			return nil, fmt.Errorf("renaming the output into place: %w", err)
		}
		irep.Output = o.Out
		return irep, nil
	}

	final := filepath.Join(work, "out.zip")
	imageZip := final
	if z.nested != nil {
		imageZip = filepath.Join(work, "image.zip")
	}
	o.say("writing %s", o.Out)
	if err := rebuildZip(ctx, imageZip, z.inner, changed, patched, z.where("")); err != nil {
		return nil, err
	}
	if z.nested != nil {
		if err := rebuildZip(ctx, final, z.outer, map[string]bool{z.nested.Name: len(changed) > 0}, "", o.Input, replacement{z.nested.Name, imageZip}); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(final, o.Out); err != nil {
		return nil, fmt.Errorf("renaming the output into place: %w", err)
	}
	irep.Output = o.Out
	return irep, nil
}

// freeBytes returns the bytes available to this user on the file system holding dir (a
// variable so tests can pretend the disk is full).
var freeBytes = func(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// renamedError is err with the temporary area's paths in its message replaced by zip names.
type renamedError struct {
	err error
	msg string
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// replacement names the file that replaces an entry of a rebuilt zip.
type replacement struct{ entry, file string }

// rebuildZip writes dst as a copy of zr: the same entries in the same order with the same
// headers (name, method, times, attributes, comments, extra fields) and the same archive
// comment. An entry in changed takes its bytes from dir/<name> (or a replacement file) and is
// compressed with its original method; every other entry is copied raw, not recompressed.
func rebuildZip(ctx context.Context, dst string, zr *zip.Reader, changed map[string]bool, dir, where string, repl ...replacement) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(dst)
		}
	}()
	zw := zip.NewWriter(out)
	if err := zw.SetComment(zr.Comment); err != nil {
		return err
	}
	for _, e := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		fh := e.FileHeader
		// the writer adds the zip64 extra field itself where sizes or offsets need it; the old
		// one (with the old offset) must not stay in front of it
		fh.Extra = dropExtra(fh.Extra, 0x0001)
		if !changed[e.Name] {
			if fh.CompressedSize64 >= uint32max || fh.UncompressedSize64 >= uint32max {
				fh.Flags |= 0x8 // sizes in a zip64 data descriptor, not the local header
			}
			if err := copyRaw(ctx, zw, e, &fh); err != nil {
				return fmt.Errorf("copying %s!%s: %w", where, e.Name, err)
			}
			continue
		}
		src := filepath.Join(dir, e.Name)
		for _, r := range repl {
			if r.entry == e.Name {
				src = r.file
			}
		}
		// the DOS time and the extra fields (an extended timestamp included) are kept as they
		// are; a non-zero Modified would make the writer add a second timestamp
		fh.Modified = time.Time{}
		fh.CRC32, fh.CompressedSize, fh.CompressedSize64, fh.UncompressedSize, fh.UncompressedSize64 = 0, 0, 0, 0, 0
		w, err := zw.CreateHeader(&fh)
		if err != nil {
			return fmt.Errorf("writing %s!%s (compression method %d): %w", where, e.Name, e.Method, err)
		}
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		_, err = copyCtx(ctx, w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("writing %s!%s: %w", where, e.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// copyRaw copies e's compressed bytes under the header fh, without recompressing.
func copyRaw(ctx context.Context, zw *zip.Writer, e *zip.File, fh *zip.FileHeader) error {
	r, err := e.OpenRaw()
	if err != nil {
		return err
	}
	w, err := zw.CreateRaw(fh)
	if err != nil {
		return err
	}
	n, err := copyCtx(ctx, w, r)
	if err == nil && uint64(n) != e.CompressedSize64 {
		err = fmt.Errorf("%w: %d compressed bytes, not %d (truncated?)", ErrBadZip, n, e.CompressedSize64)
	}
	return err
}

// dropExtra returns the extra fields without those of the given id (malformed trailing bytes
// are kept as they are).
func dropExtra(extra []byte, id uint16) []byte {
	var out []byte
	b := extra
	for len(b) >= 4 {
		tag := uint16(b[0]) | uint16(b[1])<<8
		n := int(uint16(b[2]) | uint16(b[3])<<8)
		if 4+n > len(b) {
			break
		}
		if tag != id {
			out = append(out, b[:4+n]...)
		}
		b = b[4+n:]
	}
	out = append(out, b...)
	if len(out) == 0 {
		return nil
	}
	return out
}
