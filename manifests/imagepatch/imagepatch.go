package imagepatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/selinux"
	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/internal/unixmode"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/policy"
)

// Errors callers can test with errors.Is.
var (
	// ErrUnsupported means the firmware uses a layout image patch does not write yet.
	ErrUnsupported = errors.New("not supported by image patch")
	// ErrBlocked means an APK fails the policy, so nothing is written.
	ErrBlocked = errors.New("the policy's APKs do not pass")
	// ErrSourceChanged means an APK changed while it was being verified or copied.
	ErrSourceChanged = errors.New("file changed while in use")
)

// Options says what to patch.
type Options struct {
	Policy *policy.Policy
	// Input is the firmware: a directory of partition images, a factory zip or an image zip.
	Input string
	// Out is the output directory, or for a zip input, a .zip path (a zip of the input's shape)
	// or a directory (the patched image zip's members); it must not exist.
	Out       string
	Signer    avb.Signer
	Inspector aosp.Inspector
	// DryRun computes and reports what would change, writing nothing.
	DryRun bool
	// Progress, when set, is told each long step as it starts ("writing the file system of
	// product.img"), for a user watching a patch of gigabytes.
	Progress func(step string)
	// MaxExtract bounds the bytes a zip input may unpack (its image zip's members, a deflated
	// nested image zip) into the temporary area; 0 means 64 GiB.
	MaxExtract int64

	// staged: Input is a zip's image zip unpacked by runZip, which writes the unchanged files
	// itself; the output then holds only the changed ones.
	staged bool
}

// File is one file the patch puts into a partition.
type File struct {
	Path   string `json:"path"` // device path
	Size   int64  `json:"size"`
	Mode   string `json:"mode"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Label  string `json:"label"`
	SHA256 string `json:"sha256"`
	// Replaced is true when a file was already there.
	Replaced bool `json:"replaced,omitempty"`
	// FSConfig names the fs_config record that gave the mode and owner
	// ("product:etc/fs_config_files@48"); empty for AOSP's defaults (0644, root).
	FSConfig string `json:"fsConfig,omitempty"`
}

// Partition is one image of the output that differs from the input.
type Partition struct {
	Name         string `json:"name"`
	File         string `json:"file"`
	Format       string `json:"format"`
	Why          string `json:"why"` // "files added" or "vbmeta re-signed"
	SizeBefore   int64  `json:"sizeBefore"`
	SizeAfter    int64  `json:"sizeAfter,omitempty"`
	SHA256Before string `json:"sha256Before"`
	SHA256After  string `json:"sha256After,omitempty"`
	// Sparse is true when the file is an Android sparse image (read, and written back, as one);
	// the sizes and digests are then those of the expanded partition.
	Sparse bool   `json:"sparse,omitempty"`
	Files  []File `json:"files,omitempty"`
	// RootDigestBefore/After are the hashtree root digests (hex) of a changed file system (for a
	// hash-footed partition, its hash descriptor's digests).
	RootDigestBefore string `json:"rootDigestBefore,omitempty"`
	RootDigestAfter  string `json:"rootDigestAfter,omitempty"`
	// KeySHA256Before is the SHA-256 of the AVB public key that signed this image's vbmeta.
	KeySHA256Before string   `json:"keySha256Before,omitempty"`
	Descriptors     []string `json:"descriptors,omitempty"` // what was rewritten in a vbmeta
}

// App is what was found about one app of the policy.
type App struct {
	Package   string         `json:"package"`
	APK       string         `json:"apk"`
	SHA256    string         `json:"sha256"`
	Partition string         `json:"partition"`
	Path      string         `json:"path"` // device path of the APK
	Checks    []policy.Check `json:"checks"`
}

// Report says what the patch did (or would do, for a dry run).
type Report struct {
	Input      string      `json:"input"`
	Output     string      `json:"output,omitempty"`
	DryRun     bool        `json:"dryRun"`
	Apps       []App       `json:"apps"`
	Partitions []Partition `json:"partitions"`
	// Algorithm and KeySHA256 identify the key the vbmeta images were re-signed with: a locked
	// bootloader boots the output only if this is its OEM key.
	Algorithm string   `json:"algorithm"`
	KeySHA256 string   `json:"keySha256"`
	Blockers  []string `json:"blockers,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

var safeModule = regexp.MustCompile(`^[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*$`)

// addition is a file to put into a partition's file system.
type addition struct {
	rel    string // path inside the partition
	data   []byte // small files
	src    string // or a file on disk (the APK), with its digest
	sum    string
	size   int64
	rep    *App
	isPriv bool
}

// Run patches the firmware as Options says.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Policy == nil || o.Inspector == nil {
		return nil, errors.New("image patch: no policy or APK inspector")
	}
	rep := &Report{Input: o.Input, DryRun: o.DryRun, Algorithm: o.Signer.Algorithm.String()}
	pk, err := o.Signer.PublicKeyBlob()
	if err != nil {
		return nil, err
	}
	_, rep.KeySHA256 = avb.KeyDigests(pk)
	st, err := os.Stat(o.Input)
	if err != nil {
		return nil, fmt.Errorf("reading firmware: %w", err)
	}
	if !st.IsDir() {
		if isZipFile(o.Input) {
			return runZip(ctx, o)
		}
		return runSingle(ctx, o)
	}
	if !o.DryRun {
		if _, err := os.Lstat(o.Out); err == nil {
			return nil, fmt.Errorf("writing %s: it exists; image patch never overwrites: choose a new --out", o.Out)
		}
		if strings.HasSuffix(strings.ToLower(o.Out), ".zip") {
			return nil, fmt.Errorf("writing %s: %w: a directory of images is written as a directory; zip output (of the same shape) is written for a factory or image zip input: give a directory --out", o.Out, ErrUnsupported)
		}
	}
	im, err := image.Open(ctx, o.Input, nil)
	if err != nil {
		return nil, err
	}
	defer im.Close()

	// 1. the APKs: verified and pinned before anything else
	priv, err := platformPrivileged(im)
	if err != nil {
		return nil, err
	}
	adds := map[string][]addition{}
	for i := range o.Policy.Apps {
		app := &o.Policy.Apps[i]
		a, err := prepareApp(ctx, o, app, rep, priv)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		adds[app.PatchPartition()] = append(adds[app.PatchPartition()], a...)
	}
	if len(rep.Blockers) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrBlocked, strings.Join(rep.Blockers, "; "))
	}

	// 2. check every target partition before writing anything
	var names []string
	for p := range adds {
		names = append(names, p)
	}
	sort.Strings(names)
	targets := map[string]*image.Partition{}
	for _, name := range names {
		p := im.Lookup(name)
		if p == nil {
			return nil, fmt.Errorf("patching %s: the policy puts apps on %s, which this firmware does not have (partitions: %s)", o.Input, name, strings.Join(im.Names(), ", "))
		}
		if p.Err != nil {
			return nil, fmt.Errorf("patching %s partition: %s is unreadable, nothing written: %w", name, filepath.Join(o.Input, p.Source), p.Err)
		}
		if len(p.Layers) > 0 && !isSparseFile(p) && !isSparseSuperChild(p) && !(len(p.Layers) == 1 && p.Layers[0] == "super" && strings.Count(p.Source, "!") == 1) {
			return nil, fmt.Errorf("patching %s partition (%s): %w: it is read through %s; only partition image files (raw or sparse) and logical partitions of a super.img (raw or sparse) are written yet", name, p.Source, ErrUnsupported, strings.Join(p.Layers, ", "))
		}
		switch p.Format {
		case image.FormatEROFS, image.FormatExt4:
		default:
			return nil, fmt.Errorf("patching %s partition (%s): %w: it holds %s, not a file system image patch writes", name, p.Source, ErrUnsupported, p.Format)
		}
		targets[name] = p
	}
	if o.DryRun {
		if err := checkSparseSupers(ctx, o.Input, targets); err != nil {
			return nil, err
		}
	}

	// 3. the output directory, under a temporary name
	tmp := ""
	if !o.DryRun {
		parent := filepath.Dir(filepath.Clean(o.Out))
		tmp, err = os.MkdirTemp(parent, "."+filepath.Base(o.Out)+".tmp-")
		if err != nil {
			return nil, fmt.Errorf("creating the output: %w", err)
		}
		defer func() {
			if tmp != "" {
				os.RemoveAll(tmp)
			}
		}()
	}
	resigned := map[string][]byte{} // partition name -> its new footer vbmeta signer key blob
	newDesc := map[string]avb.Descriptor{}
	for _, name := range names {
		pr, d, signedFooter, err := patchPartition(ctx, o, im, targets[name], adds[name], tmp)
		if err != nil {
			return nil, err
		}
		rep.Partitions = append(rep.Partitions, *pr)
		if d != nil {
			newDesc[name] = d
		}
		if signedFooter {
			resigned[name] = pk
		}
	}

	// 4. every vbmeta image that describes a changed partition, or chains to a re-signed one
	if err := resignVBMetas(ctx, o, im, rep, newDesc, resigned, pk, tmp); err != nil {
		return nil, err
	}
	if o.DryRun {
		return rep, nil
	}
	// a sparse super or vbmeta image was written raw: make it sparse again
	if err := resparse(ctx, o.Input, tmp, rep); err != nil {
		return nil, err
	}

	// 5. copy every other file, then rename
	changed := map[string]bool{}
	for _, p := range rep.Partitions {
		changed[strings.SplitN(p.File, "!", 2)[0]] = true
	}
	ents, err := os.ReadDir(o.Input)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", o.Input, err)
	}
	for _, e := range ents {
		if changed[e.Name()] || !e.Type().IsRegular() || o.staged {
			continue
		}
		o.say("copying %s", e.Name())
		if err := copyFile(ctx, filepath.Join(o.Input, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return nil, fmt.Errorf("renaming the output into place: %w", err)
	}
	tmp = ""
	rep.Output = o.Out
	return rep, nil
}

func prepareApp(ctx context.Context, o Options, app *policy.App, rep *Report, priv *privilegedCheck) ([]addition, error) {
	pol := o.Policy
	r := App{Package: app.Package, Partition: app.PatchPartition()}
	defer func() { rep.Apps = append(rep.Apps, r) }()
	if app.APK == "" {
		rep.Blockers = append(rep.Blockers, app.Package+": the policy gives no 'apk:' for this app; image patch needs the APK to install")
		return nil, nil
	}
	mod := app.ModuleName()
	if !safeModule.MatchString(mod) {
		rep.Blockers = append(rep.Blockers, fmt.Sprintf("%s: module name %q is not a safe directory name", app.Package, mod))
		return nil, nil
	}
	apkPath := app.APK
	if !filepath.IsAbs(apkPath) {
		apkPath = filepath.Join(pol.Dir, apkPath)
	}
	r.APK = apkPath
	sum, size, err := hashFile(apkPath)
	if err != nil {
		return nil, fmt.Errorf("reading the APK of %s: %w", app.Package, err)
	}
	facts, err := o.Inspector.InspectAPK(ctx, apkPath)
	if err != nil {
		return nil, fmt.Errorf("inspecting the APK of %s: %w", app.Package, err)
	}
	if again, _, err := hashFile(apkPath); err != nil || again != sum {
		return nil, fmt.Errorf("inspecting the APK of %s: %w: %s", app.Package, ErrSourceChanged, apkPath)
	}
	r.SHA256 = sum
	r.Checks = pol.CheckAPKFor(app, facts.APKFacts)
	for _, c := range policy.Failed(r.Checks) {
		rep.Blockers = append(rep.Blockers, fmt.Sprintf("%s: the APK fails the policy, so it is not installed: %s", app.Package, c))
	}
	if app.Privileged {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the privileged permissions it must be granted or denied come from %s", app.Package, priv.source))
		if un := priv.uncovered(facts.RequestedPermissions, app.PrivappPermissions, app.DenyPrivappPermissions); len(un) > 0 {
			rep.Blockers = append(rep.Blockers, fmt.Sprintf("%s: the APK requests privileged permissions the policy neither grants (privappPermissions) nor denies (denyPrivappPermissions): %s; an undecided privileged permission stops a device with enforced allowlists from booting", app.Package, strings.Join(un, ", ")))
		}
	}
	dir := "app"
	if app.Privileged {
		dir = "priv-app"
	}
	rel := path.Join(dir, mod, mod+".apk")
	r.Path = "/" + r.Partition + "/" + rel
	out := []addition{{rel: rel, src: apkPath, sum: sum, size: size}}
	for _, e := range aosp.AppEtcFiles(pol.Metadata.Name, app, facts) {
		out = append(out, addition{rel: path.Join("etc", e.Dir, e.Name), data: e.Data, size: int64(len(e.Data))})
	}
	return out, nil
}

// loadContexts reads the labels of a partition: the system partition's plat_file_contexts first
// (when present), then the partition's own etc/selinux/*file_contexts (later specs win).
func loadContexts(im *image.Image, name string, fsys fs.FS, root string) (*selinux.Contexts, []string, error) {
	c := &selinux.Contexts{}
	var used []string
	if name != "system" {
		if sys := im.Lookup("system"); sys != nil {
			if sfs, err := sys.FS(); err == nil {
				for _, p := range []string{"system/etc/selinux/plat_file_contexts", "etc/selinux/plat_file_contexts"} {
					b, err := fs.ReadFile(sfs, p)
					if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
						return nil, nil, fmt.Errorf("reading system:%s: %w", p, err)
					}
					if err == nil {
						if err := c.Parse(bytes.NewReader(b), "system:"+p); err != nil {
							return nil, nil, err
						}
						used = append(used, "/system/"+strings.TrimPrefix(p, "system/"))
						break
					}
				}
			}
		}
	}
	ents, err := fs.ReadDir(fsys, root+"etc/selinux")
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // unreadable (or cancelled) is not absent
		return nil, nil, fmt.Errorf("reading %s:%setc/selinux: %w", name, root, err)
	}
	if err == nil {
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), "file_contexts") {
				continue
			}
			p := root + "etc/selinux/" + e.Name()
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return nil, nil, fmt.Errorf("reading %s:%s: %w", name, p, err)
			}
			if err := c.Parse(bytes.NewReader(b), name+":"+p); err != nil {
				return nil, nil, err
			}
			used = append(used, "/"+name+"/"+strings.TrimPrefix(p, root))
		}
	}
	if len(used) == 0 {
		return nil, nil, fmt.Errorf("labelling files of %s: no file_contexts in /%s/etc/selinux nor /system/etc/selinux/plat_file_contexts; without the image's own SELinux policy the new files cannot be labelled", name, name)
	}
	return c, used, nil
}

// patchPartition writes the partition's new image (file system + hashtree footer) into tmp and
// returns its report, its new hashtree descriptor, and whether its footer vbmeta is signed (so
// that chains to it must learn the new key).
func patchPartition(ctx context.Context, o Options, im *image.Image, p *image.Partition, adds []addition, tmp string) (*Partition, avb.Descriptor, bool, error) {
	pr := &Partition{Name: p.Name, File: p.Source, Format: string(p.Format), Why: "files added", SizeBefore: p.Size}
	r, size, err := p.ReaderAt()
	if err != nil {
		return nil, nil, false, err
	}
	var sparseIn *sparseInput
	if isSparseFile(p) {
		pr.Sparse = true
		if sparseIn, err = openSparse(ctx, filepath.Join(o.Input, p.Source), tmp, o.DryRun); err != nil {
			return nil, nil, false, err
		}
		defer sparseIn.close()
		if sparseIn.raw != nil {
			r, size = sparseIn.raw, sparseIn.size
		}
	}
	// the input's digest, for the report: computed beside the rest (another core reads the input
	// while this one writes the output), joined before returning
	hctx, stopHash := context.WithCancel(ctx)
	type digest struct {
		sum string
		err error
	}
	before := make(chan digest, 1)
	go func() {
		s, err := hashReader(hctx, r, size)
		before <- digest{s, err}
	}()
	joined := false
	join := func() error {
		joined = true
		d := <-before
		if d.err != nil {
			return fmt.Errorf("reading %s: %w", p.Source, d.err)
		}
		pr.SHA256Before = d.sum
		return nil
	}
	defer func() {
		if !joined {
			stopHash()
			<-before
		}
		stopHash()
	}()
	// a logical partition of super.img: "super.img!product_a"
	superFile, lpName, inSuper := strings.Cut(p.Source, "!")
	// the file system ends where the footer says the original image ends
	var oldFooter *avb.Image
	fsSize := size
	if p.Footer != nil {
		if oldFooter, err = avb.Open(r, size); err != nil {
			return nil, nil, false, fmt.Errorf("reading the AVB footer of %s: %w", p.Source, err)
		}
		fsSize = int64(p.Footer.OriginalImageSize)
	}
	fsr := io.NewSectionReader(r, 0, fsSize)
	var src fs.FS
	switch p.Format {
	case image.FormatExt4:
		src, err = ext4.Open(fsr, fsSize)
	default:
		src, err = erofs.Open(fsr, fsSize)
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("reading %s: %w", p.Source, err)
	}
	// a system-as-root image holds the system partition under system/ (mounted at /)
	root := ""
	if p.Name == "system" {
		if fi, err := fs.Stat(src, "system/build.prop"); err == nil && !fi.IsDir() {
			root = "system/"
		}
	}
	labels, _, err := loadContexts(im, p.Name, src, root)
	if err != nil {
		return nil, nil, false, err
	}
	fsc, err := loadFSConfig(im, p.Name, src)
	if err != nil {
		return nil, nil, false, err
	}
	nul := labelsEndInNUL(src, root)
	label := func(rel string, t selinux.FileType) (newAttrs, error) {
		dp := p.Name + "/" + strings.TrimPrefix(rel, root)
		l, ok := labels.Label("/"+dp, t)
		if !ok {
			return newAttrs{}, fmt.Errorf("labelling /%s: no file_contexts entry gives it a label", dp)
		}
		return attrsFor(fsc, dp, t == selinux.Dir, l, nul), nil
	}
	// write fills the new image's file system and returns its size
	var write func(out *os.File) (int64, error)
	openFS := func(r io.ReaderAt, size int64) (fs.FS, error) { return erofs.Open(r, size) }
	if xfs, ok := src.(*ext4.FS); ok {
		openFS = func(r io.ReaderAt, size int64) (fs.FS, error) { return ext4.Open(r, size) }
		plan, err := planExt4(xfs, p, adds, root, label, pr)
		if err != nil {
			return nil, nil, false, err
		}
		write = func(out *os.File) (int64, error) { return writeExt4(ctx, fsr, fsSize, out, plan, p, pr) }
	} else if write, err = planEROFS(ctx, src.(*erofs.FS), p, adds, root, label, pr); err != nil {
		return nil, nil, false, err
	}
	var ht *avb.Hashtree
	var hd *avb.Hash // a partition verified whole (a hash footer) instead of by a hash tree
	if oldFooter != nil {
		for _, d := range oldFooter.VBMeta.Descriptors {
			switch d := d.(type) {
			case *avb.Hashtree:
				if d.PartitionName == p.Name {
					ht = d
				}
			case *avb.Hash:
				if d.PartitionName == p.Name {
					hd = d
				}
			}
		}
		switch {
		case ht != nil:
			pr.RootDigestBefore = hex.EncodeToString(ht.RootDigest)
		case hd != nil:
			pr.RootDigestBefore = hex.EncodeToString(hd.Digest)
		default:
			return nil, nil, false, fmt.Errorf("patching %s: %w: its AVB footer holds neither a hashtree nor a hash descriptor for %s", p.Source, ErrUnsupported, p.Name)
		}
	}
	willSign := oldFooter != nil && oldFooter.VBMeta.Algorithm != avb.AlgNone
	if o.DryRun {
		if err := join(); err != nil {
			return nil, nil, false, err
		}
		return pr, nil, willSign, nil
	}
	dst := filepath.Join(tmp, p.Source)
	switch {
	case inSuper:
		dst = filepath.Join(tmp, "."+lpName+".new")
		defer os.Remove(dst)
	case sparseIn != nil: // the raw image, made sparse at the end
		dst = filepath.Join(tmp, "."+p.Source+".raw-out")
		defer os.Remove(dst)
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, false, err
	}
	defer out.Close()
	o.say("writing the %s file system of %s (%d MiB)", p.Format, p.Source, fsSize>>20)
	newFS, err := write(out)
	if err != nil {
		return nil, nil, false, err
	}
	if err := checkFiles(ctx, out, newFS, openFS, pr.Files, p.Name, root); err != nil {
		return nil, nil, false, err
	}
	// the output's digest: its file system is hashed on another core while the hash tree is
	// built (the footer writer never changes those bytes), the rest once the partition is laid out
	after := startDigest(ctx, out, newFS)
	defer after.stop()
	final := newFS
	var desc avb.Descriptor
	signed := false
	var vo avb.VBMetaOptions
	signer := avb.Signer{} // an unsigned footer vbmeta stays unsigned
	if oldFooter != nil {
		vo = avb.OptionsOf(oldFooter.VBMeta)
		var keep []avb.Descriptor
		for _, d := range vo.Descriptors {
			switch d := d.(type) {
			case *avb.Hashtree:
				if d.PartitionName == p.Name {
					continue
				}
			case *avb.Hash:
				if d.PartitionName == p.Name {
					continue
				}
			}
			keep = append(keep, d)
		}
		vo.Descriptors = keep
		if oldFooter.VBMeta.Algorithm != avb.AlgNone {
			signer, signed = o.Signer, true
		}
	}
	if hd != nil {
		fo := avb.FooterOptions{PartitionName: p.Name, PartitionSize: size, HashAlgorithm: hd.HashAlgorithm, Salt: hd.Salt, Flags: hd.Flags, BlockSize: 4096, VBMeta: vo}
		o.say("hash and AVB footer of %s (%d MiB)", p.Source, newFS>>20)
		nd, total, err := avb.AddHashFooter(ctx, out, newFS, fo, signer)
		if errors.Is(err, avb.ErrPartitionTooSmall) {
			fo.PartitionSize = 0
			nd, total, err = avb.AddHashFooter(ctx, out, newFS, fo, signer)
			pr.Why += fmt.Sprintf("; partition grown from %d bytes", size)
		}
		if err != nil {
			return nil, nil, false, err
		}
		final, desc = total, nd
		pr.RootDigestAfter = hex.EncodeToString(nd.Digest)
	}
	if ht != nil {
		fo := avb.FooterOptions{PartitionName: p.Name, PartitionSize: size, HashAlgorithm: ht.HashAlgorithm,
			Salt: ht.Salt, BlockSize: ht.DataBlockSize, Flags: ht.Flags, VBMeta: vo}
		if ht.FECSize > 0 { // regenerated with the same number of roots
			fo.FECRoots = int(ht.FECNumRoots)
		}
		if ht.DataBlockSize != ht.HashBlockSize {
			return nil, nil, false, fmt.Errorf("patching %s: %w: data and hash block sizes differ (%d/%d)", p.Source, ErrUnsupported, ht.DataBlockSize, ht.HashBlockSize)
		}
		o.say("hash tree and AVB footer of %s (%d MiB)", p.Source, newFS>>20)
		nd, total, err := avb.AddHashtreeFooter(ctx, out, newFS, fo, signer)
		if errors.Is(err, avb.ErrPartitionTooSmall) {
			// the partition must grow: as small as the new image allows
			fo.PartitionSize = 0
			nd, total, err = avb.AddHashtreeFooter(ctx, out, newFS, fo, signer)
			pr.Why += fmt.Sprintf("; partition grown from %d bytes", size)
		}
		if err != nil {
			return nil, nil, false, err
		}
		final, desc = total, nd
		pr.RootDigestAfter = hex.EncodeToString(nd.RootDigest)
	}
	if err := out.Truncate(final); err != nil {
		return nil, nil, false, err
	}
	if err := out.Sync(); err != nil {
		return nil, nil, false, err
	}
	pr.SizeAfter = final
	if pr.SHA256After, err = after.finish(out, final); err != nil {
		return nil, nil, false, fmt.Errorf("reading %s: %w", dst, err)
	}
	if sparseIn != nil {
		if err := writeSparse(ctx, filepath.Join(tmp, p.Source), out, final, sparseIn.blockSize); err != nil {
			return nil, nil, false, fmt.Errorf("writing %s as a sparse image: %w", p.Source, err)
		}
	}
	if inSuper {
		if err := writeIntoSuper(ctx, filepath.Join(o.Input, superFile), filepath.Join(tmp, superFile), lpName, out, final); err != nil {
			return nil, nil, false, err
		}
		if final < size { // the logical partition: the new image, then zeros
			if err := out.Truncate(size); err != nil {
				return nil, nil, false, err
			}
			if pr.SHA256After, err = after.finish(out, size); err != nil {
				return nil, nil, false, err
			}
		}
		pr.SizeAfter = max(size, final)
	}
	if err := join(); err != nil {
		return nil, nil, false, err
	}
	return pr, desc, signed, nil
}

// labelFunc gives the label, xattrs, mode and owner of a new path inside a partition.
type labelFunc func(rel string, t selinux.FileType) (newAttrs, error)

// planEROFS adds the files to the EROFS tree of efs (replacing files already there) and returns
// the function that writes the new file system.
func planEROFS(ctx context.Context, efs *erofs.FS, p *image.Partition, adds []addition, root string, label labelFunc, pr *Partition) (func(*os.File) (int64, error), error) {
	nodes, wopts, err := erofs.Tree(ctx, efs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.Source, err)
	}
	index := map[string]int{}
	for i, n := range nodes {
		index[n.Path] = i
	}
	mtime := nodes[0].Mtime // AOSP builds stamp every file alike; new files take the root's time
	apks := map[string]string{}
	for _, a := range adds {
		a.rel = root + a.rel
		// parent directories, AOSP defaults
		parts := strings.Split(a.rel, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if j, ok := index[d]; ok {
				if nodes[j].Mode&unixmode.IFMT != unixmode.IFDIR {
					return nil, fmt.Errorf("patching %s: /%s/%s exists and is not a directory", p.Source, p.Name, d)
				}
				continue
			}
			at, err := label(d, selinux.Dir)
			if err != nil {
				return nil, err
			}
			index[d] = len(nodes)
			nodes = append(nodes, erofs.Node{Path: d, Mode: unixmode.IFDIR | uint32(at.perm), UID: at.uid, GID: at.gid, Mtime: mtime, Xattrs: at.xattrs})
		}
		at, err := label(a.rel, selinux.Regular)
		if err != nil {
			return nil, err
		}
		n := erofs.Node{Path: a.rel, Mode: unixmode.IFREG | uint32(at.perm), UID: at.uid, GID: at.gid, Mtime: mtime, Xattrs: at.xattrs, Size: a.size}
		sum := a.sum
		if a.data != nil {
			n.Data = bytes.NewReader(a.data)
			s := sha256.Sum256(a.data)
			sum = hex.EncodeToString(s[:])
		} else {
			apks[a.rel] = a.src // opened when written
		}
		f := at.file("/"+p.Name+"/"+strings.TrimPrefix(a.rel, root), a.size, sum)
		if j, ok := index[a.rel]; ok {
			if nodes[j].Mode&unixmode.IFMT == unixmode.IFDIR {
				return nil, fmt.Errorf("patching %s: %s exists and is a directory", p.Source, f.Path)
			}
			nodes[j] = n
			f.Replaced = true
		} else {
			index[a.rel] = len(nodes)
			nodes = append(nodes, n)
		}
		pr.Files = append(pr.Files, f)
	}
	// parents before children
	sort.SliceStable(nodes, func(i, j int) bool { return depth(nodes[i].Path) < depth(nodes[j].Path) })

	return func(out *os.File) (int64, error) {
		for i := range nodes {
			if src, ok := apks[nodes[i].Path]; ok {
				f, err := os.Open(src)
				if err != nil {
					return 0, err
				}
				defer f.Close()
				nodes[i].Data = f
			}
		}
		st, err := erofs.WriteWithStats(ctx, out, nodes, wopts)
		if err != nil {
			return 0, fmt.Errorf("writing %s: %w", p.Source, err)
		}
		pr.Why += fallbackNote(st, p.Name, root)
		return st.Size, nil
	}, nil
}

// fallbackNote says, for the report, how many files compressed or deduplicated (chunk-based) in
// the old EROFS image were written plain and uncompressed (so take their whole decompressed size,
// each its own blocks), naming the first and why; "" when every such file kept its layout.
func fallbackNote(st erofs.WriteStats, part, root string) string {
	n := len(st.Fallbacks)
	if n == 0 {
		return ""
	}
	fb := st.Fallbacks[0]
	return fmt.Sprintf("; %d compressed or deduplicated file(s) written plain and uncompressed, e.g. /%s/%s (%s)", n, part, strings.TrimPrefix(fb.Path, root), fb.Reason)
}

// planExt4 lists the directories and files to add to the ext4 file system xfs, and the regular
// files already there to replace, and works out the room they need (see ext4Plan).
func planExt4(xfs *ext4.FS, p *image.Partition, adds []addition, root string, label labelFunc, pr *Partition) (*ext4Plan, error) {
	rootInfo, err := xfs.Stat(".")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.Source, err)
	}
	mtime := rootInfo.ModTime() // AOSP builds stamp every file alike; new files take the root's time
	planned := map[string]bool{}
	var ops []ext4Op
	for _, a := range adds {
		a.rel = root + a.rel
		parts := strings.Split(a.rel, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if planned[d] {
				continue
			}
			fi, err := xfs.Stat(d)
			switch {
			case err == nil && !fi.IsDir():
				return nil, fmt.Errorf("patching %s: /%s/%s exists and is not a directory", p.Source, p.Name, d)
			case err == nil:
				continue
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("reading %s: %w", p.Source, err)
			}
			at, err := label(d, selinux.Dir)
			if err != nil {
				return nil, err
			}
			planned[d] = true
			ops = append(ops, ext4Op{rel: d, dir: true, meta: at.ext4(mtime)})
		}
		at, err := label(a.rel, selinux.Regular)
		if err != nil {
			return nil, err
		}
		sum := a.sum
		if a.data != nil {
			s := sha256.Sum256(a.data)
			sum = hex.EncodeToString(s[:])
		}
		f := at.file("/"+p.Name+"/"+strings.TrimPrefix(a.rel, root), a.size, sum)
		if planned[a.rel] {
			return nil, fmt.Errorf("patching %s: %s is added twice", p.Source, f.Path)
		}
		op := ext4Op{rel: a.rel, meta: at.ext4(mtime), add: a}
		if fi, err := xfs.Lstat(a.rel); err == nil {
			if err := replaceable(fi); err != nil {
				return nil, fmt.Errorf("patching %s: %s exists and cannot be replaced: %w", p.Source, f.Path, err)
			}
			op.replace, f.Replaced = true, true
			op.freed = fi.Sys().(*ext4.Inode).Blocks512()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", p.Source, err)
		}
		planned[a.rel] = true
		ops = append(ops, op)
		pr.Files = append(pr.Files, f)
	}
	return newExt4Plan(xfs, ops, pr), nil
}

// writeExt4 copies the file system (the first fsSize bytes of r) to out, grows it when the plan
// needs more room than is free, and adds and replaces the plan's files in place. It returns the
// size of the new file system.
func writeExt4(ctx context.Context, r io.ReaderAt, fsSize int64, out *os.File, plan *ext4Plan, p *image.Partition, pr *Partition) (int64, error) {
	if _, err := io.Copy(out, io.NewSectionReader(ctxReaderAt{ctx, r}, 0, fsSize)); err != nil {
		return 0, fmt.Errorf("copying %s: %w", p.Source, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ed, err := ext4.Edit(out, fsSize)
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.Source, wrapUnsupported(err))
	}
	newSize, err := growExt4(ctx, ed, plan, fsSize, pr)
	if err != nil {
		return 0, fmt.Errorf("growing the file system of %s: %w", p.Source, wrapUnsupported(err))
	}
	for _, op := range plan.ops {
		put := ed.Create
		if op.replace {
			put = ed.Replace
		}
		if op.dir {
			err = ed.Mkdir(op.rel, op.meta)
		} else if op.add.data != nil {
			err = put(ctx, op.rel, op.meta, bytes.NewReader(op.add.data), op.add.size)
		} else {
			var f *os.File
			if f, err = os.Open(op.add.src); err == nil {
				err = put(ctx, op.rel, op.meta, f, op.add.size)
				f.Close()
			}
		}
		if err != nil {
			return 0, fmt.Errorf("writing /%s/%s into %s: %w", p.Name, op.rel, p.Source, wrapUnsupported(err))
		}
	}
	if err := ed.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", p.Source, err)
	}
	return newSize, nil
}

// wrapUnsupported marks the ext4 editor's refusals as this package's ErrUnsupported.
func wrapUnsupported(err error) error {
	if errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// checkFiles reads the new files back from the written file system and checks their digests: an
// APK replaced while it was copied is never shipped.
func checkFiles(ctx context.Context, r io.ReaderAt, size int64, open func(io.ReaderAt, int64) (fs.FS, error), files []File, part, root string) error {
	f, err := open(r, size)
	if err != nil {
		return fmt.Errorf("reading back the new %s file system: %w", part, err)
	}
	for _, fl := range files {
		rel := root + strings.TrimPrefix(fl.Path, "/"+part+"/")
		fh, err := f.Open(rel)
		if err != nil {
			return fmt.Errorf("reading back %s: %w", fl.Path, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("reading back %s: %w", fl.Path, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != fl.SHA256 {
			return fmt.Errorf("writing %s: %w: its digest differs from the verified one", fl.Path, ErrSourceChanged)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// resignVBMetas rebuilds every vbmeta image (a vbmeta partition) that holds a descriptor of a
// changed partition or chains to a re-signed image, repeating until no chain is stale.
func resignVBMetas(ctx context.Context, o Options, im *image.Image, rep *Report, newDesc map[string]avb.Descriptor, resigned map[string][]byte, pk []byte, tmp string) error {
	type vb struct {
		p    *image.Partition
		v    *avb.VBMeta
		opts avb.VBMetaOptions
		what []string
	}
	var all []*vb
	for _, p := range im.Partitions {
		if p.Format != image.FormatVBMeta || !p.Active {
			continue
		}
		r, size, err := p.ReaderAt()
		if err != nil {
			return err
		}
		a, err := avb.Open(r, size)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p.Source, err)
		}
		all = append(all, &vb{p: p, v: a.VBMeta, opts: avb.OptionsOf(a.VBMeta)})
	}
	dirty := map[*vb]bool{}
	for changed := true; changed; {
		changed = false
		for _, x := range all {
			for i, d := range x.opts.Descriptors {
				switch d := d.(type) {
				case *avb.Hash:
					if nd, ok := newDesc[d.PartitionName]; ok && avb.Descriptor(d) != nd {
						x.opts.Descriptors[i] = nd
						x.what = append(x.what, "hash descriptor of "+d.PartitionName+" replaced")
						dirty[x], changed = true, true
					} else if _, ok := rep.findPartition(d.PartitionName); ok && o.DryRun && !dirty[x] {
						x.what = append(x.what, "hash descriptor of "+d.PartitionName+" replaced")
						dirty[x], changed = true, true
					}
				case *avb.Hashtree:
					if nd, ok := newDesc[d.PartitionName]; ok && d != nd {
						x.opts.Descriptors[i] = nd
						x.what = append(x.what, "hashtree descriptor of "+d.PartitionName+" replaced")
						dirty[x], changed = true, true
					} else if _, ok := rep.findPartition(d.PartitionName); ok && o.DryRun && !dirty[x] {
						x.what = append(x.what, "hashtree descriptor of "+d.PartitionName+" replaced")
						dirty[x], changed = true, true
					}
				case *avb.ChainPartition:
					if key, ok := resigned[d.PartitionName]; ok && !bytes.Equal(d.PublicKey, key) {
						c := *d
						c.PublicKey = key
						x.opts.Descriptors[i] = &c
						x.what = append(x.what, "chain descriptor of "+d.PartitionName+" given the new key")
						dirty[x], changed = true, true
					}
				}
			}
			if dirty[x] {
				if _, ok := resigned[x.p.Name]; !ok {
					resigned[x.p.Name] = pk
					changed = true
				}
			}
		}
	}
	for _, x := range all {
		if !dirty[x] {
			continue
		}
		src := filepath.Join(o.Input, x.p.Source)
		if len(x.p.Layers) > 0 && !isSparseFile(x.p) {
			return fmt.Errorf("re-signing %s: %w: it is read through %s", x.p.Source, ErrUnsupported, strings.Join(x.p.Layers, ", "))
		}
		pr := Partition{Name: x.p.Name, File: x.p.Source, Format: string(x.p.Format), Why: "vbmeta re-signed", SizeBefore: x.p.Size, Descriptors: x.what}
		_, pr.KeySHA256Before = avb.KeyDigests(x.v.PublicKey)
		var err error
		if isSparseFile(x.p) { // the expanded image's digest; written back sparse by resparse
			pr.Sparse = true
			r, size, err := x.p.ReaderAt()
			if err == nil {
				pr.SHA256Before, err = hashReader(ctx, r, size)
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", x.p.Source, err)
			}
		} else if pr.SHA256Before, _, err = hashFile(src); err != nil {
			return err
		}
		if !o.DryRun {
			o.say("re-signing %s", x.p.Source)
			b, err := avb.BuildVBMeta(x.opts, o.Signer)
			if err != nil {
				return fmt.Errorf("re-signing %s: %w", x.p.Source, err)
			}
			// keep the file's size (vbmeta partitions are padded to their partition size)
			if int64(len(b)) < x.p.Size {
				b = append(b, make([]byte, x.p.Size-int64(len(b)))...)
			}
			dst := filepath.Join(tmp, x.p.Source)
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return err
			}
			pr.SizeAfter = int64(len(b))
			s := sha256.Sum256(b)
			pr.SHA256After = hex.EncodeToString(s[:])
		}
		rep.Partitions = append(rep.Partitions, pr)
	}
	if len(newDesc) > 0 || o.DryRun {
		for name := range newDesc {
			found := false
			for _, x := range all {
				if dirty[x] {
					for _, w := range x.what {
						if strings.Contains(w, " of "+name+" ") {
							found = true
						}
					}
				}
			}
			if !found {
				rep.Notes = append(rep.Notes, fmt.Sprintf("no vbmeta image of this firmware describes %s: its footer is rewritten, but check how the device verifies it", name))
			}
		}
	}
	return nil
}

// writeIntoSuper copies the input super image to dst (once; expanded when it is sparse) and
// writes the new partition image into the logical partition's extents, growing it when needed.
func writeIntoSuper(ctx context.Context, src, dst, lpName string, r io.ReaderAt, size int64) error {
	if _, err := os.Stat(dst); errors.Is(err, fs.ErrNotExist) {
		if err := copyOrExpand(ctx, src, dst); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := out.Stat()
	if err != nil {
		out.Close()
		return err
	}
	sim, err := super.Open(out, st.Size(), nil)
	if err != nil {
		out.Close()
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if lp, ok := sim.Partition(lpName); ok && lp.Size < size {
		// grow the logical partition: new LP metadata in every slot copy, then read it again
		md, err := sim.Grow(lpName, size)
		if err == nil {
			err = sim.WriteMetadata(out, md)
		}
		if err == nil {
			sim, err = super.Open(out, st.Size(), nil)
		}
		if err != nil {
			out.Close()
			return fmt.Errorf("growing %s in %s to %d bytes: %w", lpName, filepath.Base(dst), size, err)
		}
	}
	if err := sim.WriteInPlace(ctx, out, lpName, r, size); err != nil {
		out.Close()
		return fmt.Errorf("writing %s into %s: %w", lpName, filepath.Base(dst), err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func hashReader(ctx context.Context, r io.ReaderAt, size int64) (string, error) {
	h := sha256.New()
	if err := feed(ctx, h, r, 0, size); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (r *Report) findPartition(name string) (*Partition, bool) {
	for i := range r.Partitions {
		if r.Partitions[i].Name == name && r.Partitions[i].Why != "vbmeta re-signed" {
			return &r.Partitions[i], true
		}
	}
	return nil, false
}

func depth(p string) int {
	if p == "." {
		return 0
	}
	return strings.Count(p, "/") + 1
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func copyFile(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			out.Close()
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return fmt.Errorf("copying %s: %w", src, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return fmt.Errorf("copying %s: %w", src, rerr)
		}
	}
	return out.Close()
}

// say reports a step to o.Progress, if set.
func (o Options) say(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}
