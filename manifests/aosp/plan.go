package aosp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
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

	"github.com/provkit/provkit/manifests/aosp/blueprint"
	"github.com/provkit/provkit/manifests/aosp/makefile"
	"github.com/provkit/provkit/manifests/aosp/unidiff"
	"github.com/provkit/provkit/manifests/policy"
)

// Formats of the module definition.
const (
	FormatBp = "bp"
	FormatMk = "mk"
)

// Placements of the module in PRODUCT_PACKAGES.
const (
	// PlaceInherit writes preinstall.mk and adds "$(call inherit-product, .../preinstall.mk)" to
	// the product makefile.
	PlaceInherit = "inherit"
	// PlaceAppend adds the module as a line of an unconditional "PRODUCT_PACKAGES +=" list of the
	// product makefile.
	PlaceAppend = "append"
)

// Options says what to patch and how.
type Options struct {
	Policy *policy.Policy
	// Tree is the AOSP root directory.
	Tree string
	// Product is the product makefile (relative to Tree) or a product name from an
	// AndroidProducts.mk; empty: the only product the tree declares.
	Product string
	// Format is FormatBp, FormatMk or empty (detected from the tree).
	Format string
	// Dir is the directory (relative to Tree) that holds one subdirectory per app; empty:
	// vendor/<Vendor>/preinstall.
	Dir string
	// Vendor names the vendor directory; empty: taken from the product makefile's path.
	Vendor string
	// Placement is PlaceInherit (default) or PlaceAppend.
	Placement string
	// Vars presets make variables (e.g. TARGET_BUILD_VARIANT=user) so conditions on them can be
	// decided instead of being treated as unknown.
	Vars map[string]string
	// DexPreopt keeps dex pre-optimisation on (off by default: a presigned prebuilt is installed
	// as signed).
	DexPreopt bool
	// Preprocessed marks the APK "preprocessed" (Soong then installs it byte for byte; the APK must
	// be zipaligned with uncompressed dex and JNI libraries). Android 12 and later only.
	Preprocessed bool
	// ScanDirs are where conflicts are looked for (relative to Tree); empty: device, vendor, product.
	ScanDirs []string
	// Verbose reports every unresolved product list entry instead of a count.
	Verbose bool
	// Revert plans the removal of what provkit added instead.
	Revert bool
	// Inspector establishes APK facts.
	Inspector Inspector
	// APILevel chooses the built-in table of privileged permissions when the tree has no
	// frameworks/base/core/res/AndroidManifest.xml; 0: the tree's own level (version_defaults.mk or
	// the release configuration), else the newest table.
	APILevel int
}

// Change is one file the patch creates, modifies or deletes.
type Change struct {
	Path   string `json:"path"`
	Action string `json:"action"` // create, modify, delete
	Reason string `json:"reason"`
	Old    []byte `json:"-"`
	New    []byte `json:"-"`
	Binary bool   `json:"binary,omitempty"`
	// Src is where a binary file's new content is copied from at Apply (an APK is never held in
	// memory); SHA256 is that content's digest, checked again while copying.
	Src    string `json:"-"`
	SHA256 string `json:"sha256,omitempty"`
	// oldSHA256 is the digest of a binary file's current content, checked again at Apply.
	oldSHA256 string
}

// Finding is a conflict that would defeat the app (it blocks the patch) or a note.
type Finding struct {
	App string `json:"app,omitempty"`
	Loc Loc    `json:"loc"`
	Msg string `json:"message"`
}

func (f Finding) String() string {
	s := f.Msg
	if f.Loc.File != "" {
		s = f.Loc.String() + ": " + s
	}
	if f.App != "" {
		s = f.App + ": " + s
	}
	return s
}

// AppReport is what the patch found about one app.
type AppReport struct {
	Package   string         `json:"package"`
	Module    string         `json:"module"`
	Partition string         `json:"partition"`
	Dir       string         `json:"dir"`
	APK       string         `json:"apk"`
	Checks    []policy.Check `json:"checks"`
	// Uncovered are privileged permissions the APK requests that the policy neither grants nor denies.
	Uncovered []string `json:"uncoveredPrivilegedPermissions,omitempty"`
	// TargetSDK is the APK's targetSdkVersion.
	TargetSDK int `json:"targetSdk,omitempty"`
	// Preprocessed: the APK is installed byte for byte (Android.bp `preprocessed: true`, Android.mk
	// LOCAL_REPLACE_PREBUILT_APK_INSTALLED).
	Preprocessed bool `json:"preprocessed"`
	// LayoutProblems name the entries that keep the APK from being installed byte for byte.
	LayoutProblems []string `json:"layoutProblems,omitempty"`
}

// Plan is a prepared and validated patch: nothing is written until Apply.
type Plan struct {
	Tree      string      `json:"tree"`
	Product   string      `json:"product"`
	Format    string      `json:"format"`
	Placement string      `json:"placement"`
	Dir       string      `json:"dir"`
	Revert    bool        `json:"revert"`
	Apps      []AppReport `json:"apps"`
	Changes   []Change    `json:"changes"`
	// Blockers are why the patch must not be applied (exit 4): an APK that fails the policy,
	// privileged permissions left undecided, conflicts in the tree.
	Blockers []Finding `json:"blockers"`
	Notes    []string  `json:"notes"`
	// PermissionSource says where the list of privileged permissions came from (set when a
	// privileged app was checked).
	PermissionSource string `json:"permissionSource,omitempty"`

	// removeDirs are directories to remove when they end up empty (revert).
	removeDirs []string
}

// Blocked reports whether the patch must not be applied.
func (p *Plan) Blocked() bool { return len(p.Blockers) > 0 }

// Compliant reports whether the tree already is as the policy wants (nothing to change, nothing
// blocking).
func (p *Plan) Compliant() bool { return !p.Blocked() && len(p.Changes) == 0 }

// Diff renders every change as a unified diff (paths a/<path> and b/<path>, /dev/null for created
// and deleted files; binary files as one line).
func (p *Plan) Diff() string {
	var b strings.Builder
	for _, c := range p.Changes {
		oldL, newL := "a/"+c.Path, "b/"+c.Path
		if c.Action == "create" {
			oldL = "/dev/null"
		}
		if c.Action == "delete" {
			newL = "/dev/null"
		}
		if c.Binary {
			fmt.Fprintf(&b, "Binary files %s and %s differ\n", oldL, newL)
			continue
		}
		b.WriteString(unidiff.Diff(oldL, newL, string(c.Old), string(c.New)))
	}
	return b.String()
}

// safeName is what a name written into a makefile or Blueprint file may contain: nothing that make
// would expand ($), that would start a comment (#) or continue a line (\).
var safeName = regexp.MustCompile(`^[A-Za-z0-9_.+@-]+$`)

// safePath is the same for a path relative to the tree.
var safePath = regexp.MustCompile(`^[A-Za-z0-9_.+@/-]+$`)

// ErrBadOptions is wrapped by errors about the options themselves.
var ErrBadOptions = errors.New("invalid patch options")

// Prepare computes the patch (or its revert) without writing anything.
func Prepare(ctx context.Context, o Options) (*Plan, error) {
	if o.Policy == nil {
		return nil, fmt.Errorf("%w: no policy", ErrBadOptions)
	}
	fi, err := os.Stat(o.Tree)
	if err != nil {
		return nil, fmt.Errorf("opening the tree: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("opening the tree: %s is not a directory", o.Tree)
	}
	if o.Format != "" && o.Format != FormatBp && o.Format != FormatMk {
		return nil, fmt.Errorf("%w: format %q: use bp or mk", ErrBadOptions, o.Format)
	}
	if o.Placement == "" {
		o.Placement = PlaceInherit
	}
	if o.Placement != PlaceInherit && o.Placement != PlaceAppend {
		return nil, fmt.Errorf("%w: placement %q: use inherit or append", ErrBadOptions, o.Placement)
	}
	if o.APILevel < 0 || o.APILevel > 0 && o.APILevel < 21 || o.APILevel >= 1000 {
		return nil, fmt.Errorf("%w: API level %d: give an Android API level such as 34", ErrBadOptions, o.APILevel)
	}
	if len(o.ScanDirs) == 0 {
		o.ScanDirs = productDirs
	}
	t := newTree(o.Tree)
	product, err := resolveProduct(t, o.Product)
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		v := o.Vendor
		if v == "" {
			v = vendorOf(product)
		}
		dir = path.Join("vendor", v, "preinstall")
	}
	dir = path.Clean(strings.TrimPrefix(filepath.ToSlash(dir), "./"))
	if path.IsAbs(dir) || strings.HasPrefix(dir, "..") {
		return nil, fmt.Errorf("%w: --dir %s must be inside the tree", ErrBadOptions, o.Dir)
	}
	if !safePath.MatchString(dir) {
		return nil, fmt.Errorf("%w: the module directory %q would be written into makefiles; use letters, digits and _ . + @ - / only", ErrBadOptions, dir)
	}
	if o.Product != "" && !strings.HasSuffix(o.Product, ".mk") {
		// The build knows its product's name: conditions on TARGET_PRODUCT are decided.
		if _, set := o.Vars["TARGET_PRODUCT"]; !set {
			vars := map[string]string{"TARGET_PRODUCT": o.Product}
			for k, v := range o.Vars {
				vars[k] = v
			}
			o.Vars = vars
		}
	}
	p := &Plan{Tree: o.Tree, Product: product, Dir: dir, Placement: o.Placement, Revert: o.Revert}
	p.Format = o.Format
	if p.Format == "" {
		// What an earlier run wrote stays (a plain --check after --format mk must not ask for
		// an Android.bp); otherwise what the tree uses.
		p.Format = previousFormat(t, dir, o.Policy)
		if p.Format == "" {
			p.Format = detectFormat(t)
		}
	}
	if !o.Revert {
		if n := gitProjectNote(t, dir, product); n != "" {
			p.Notes = append(p.Notes, n)
		}
	}
	pl := &planner{o: o, t: t, p: p}
	if o.Revert {
		err = pl.revert(ctx)
	} else {
		err = pl.patch(ctx)
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(p.Changes, func(i, j int) bool { return p.Changes[i].Path < p.Changes[j].Path })
	return p, nil
}

// previousFormat is the format of the module definitions provkit wrote for the policy's apps in an
// earlier run, or "" when there are none.
func previousFormat(t *tree, dir string, pol *policy.Policy) string {
	for i := range pol.Apps {
		d := path.Join(dir, pol.Apps[i].ModuleName())
		for _, f := range []struct{ name, format string }{{"Android.mk", FormatMk}, {"Android.bp", FormatBp}} {
			if b, ok, err := t.onDisk(path.Join(d, f.name)); err == nil && ok && isGenerated(b) {
				return f.format
			}
		}
	}
	return ""
}

// vendorOf takes the vendor name from device/<vendor>/... or vendor/<vendor>/...
func vendorOf(product string) string {
	parts := strings.Split(product, "/")
	if len(parts) >= 3 && (parts[0] == "device" || parts[0] == "vendor") {
		return parts[1]
	}
	return "provkit"
}

// detectFormat picks Android.bp when the tree's Soong knows android_app_import (or, without a
// build/soong checkout, when the tree's vendor and device directories use Android.bp at all), and
// Android.mk otherwise.
func detectFormat(t *tree) string {
	if t.isDir("build/soong") {
		if t.exists("build/soong/java/app_import.go") {
			return FormatBp
		}
		return FormatMk
	}
	bp, mk := 0, 0
	_ = t.walk([]string{"vendor", "device"}, func(rel string) error {
		switch path.Base(rel) {
		case "Android.bp":
			bp++
		case "Android.mk":
			mk++
		}
		return nil
	})
	if mk > 0 && bp == 0 {
		return FormatMk
	}
	return FormatBp
}

type planner struct {
	o     Options
	t     *tree
	p     *Plan
	specs []*appSpec
	// pkgOf caches the package names of the tree's other prebuilt APKs.
	pkgOf map[string]string
	// perms says which permissions are privileged (loaded when a privileged app needs it).
	perms *permCatalog
}

func (pl *planner) block(app string, loc Loc, format string, args ...any) {
	pl.p.Blockers = append(pl.p.Blockers, Finding{App: app, Loc: loc, Msg: fmt.Sprintf(format, args...)})
}

func (pl *planner) note(format string, args ...any) {
	pl.p.Notes = append(pl.p.Notes, fmt.Sprintf(format, args...))
}

// set records the desired content of a file in the overlay and as a change when it differs from
// the disk.
func (pl *planner) set(rel string, content []byte, binary bool, reason string) error {
	old, exists, err := pl.t.onDisk(rel)
	if err != nil {
		return err
	}
	pl.t.overlay[rel] = content
	if exists && bytes.Equal(old, content) {
		return nil
	}
	action := "create"
	if exists {
		action = "modify"
	}
	for i, c := range pl.p.Changes {
		if c.Path == rel {
			pl.p.Changes[i].New = content
			return nil
		}
	}
	pl.p.Changes = append(pl.p.Changes, Change{Path: rel, Action: action, Reason: reason, Old: old, New: content, Binary: binary})
	return nil
}

// current returns a file's content as planned so far (overlay first, then disk).
func (pl *planner) current(rel string) ([]byte, bool, error) {
	if b, ok := pl.t.overlay[rel]; ok {
		return b, b != nil, nil
	}
	return pl.t.onDisk(rel)
}

// hashFile returns the SHA-256 of a file, read as a stream; ok is false when it does not exist.
func hashFile(p string) (string, bool, error) {
	f, err := openRegular(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", false, fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), true, nil
}

// setBinary plans a binary file copied from src: nothing when the tree already holds the same
// bytes, a create or modify otherwise.
func (pl *planner) setBinary(rel, src, sum, reason string) error {
	cur, exists, err := hashFile(pl.t.abs(rel))
	if err != nil {
		return err
	}
	pl.t.overlay[rel] = []byte{} // present; its bytes are never read through the overlay
	if exists && cur == sum {
		return nil
	}
	action := "create"
	if exists {
		action = "modify"
	}
	pl.p.Changes = append(pl.p.Changes, Change{Path: rel, Action: action, Reason: reason, Binary: true, Src: src, SHA256: sum, oldSHA256: cur})
	return nil
}

// patch plans the addition of every app of the policy.
func (pl *planner) patch(ctx context.Context) error {
	pol := pl.o.Policy
	if pl.o.Inspector == nil {
		return fmt.Errorf("%w: no APK inspector", ErrBadOptions)
	}
	for i := range pol.Apps {
		app := &pol.Apps[i]
		rep := AppReport{Package: app.Package, Module: app.ModuleName(), Partition: app.PatchPartition(), Dir: path.Join(pl.p.Dir, app.ModuleName())}
		if app.APK == "" {
			pl.p.Apps = append(pl.p.Apps, rep)
			pl.block(app.Package, Loc{pol.Source, app.Line}, "the policy gives no 'apk:' for this app; patch needs the APK to put in the tree")
			continue
		}
		apkPath := app.APK
		if !filepath.IsAbs(apkPath) {
			apkPath = filepath.Join(pol.Dir, apkPath)
		}
		rep.APK = apkPath
		// The APK's digest, taken before and after verification: Apply copies the APK and checks the
		// copy against it, so a file replaced during or after verification is never installed.
		sum, ok, err := hashFile(apkPath)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("reading APK %s: %w", apkPath, fs.ErrNotExist)
		}
		facts, err := pl.o.Inspector.InspectAPK(ctx, apkPath)
		if err != nil {
			return fmt.Errorf("inspecting the APK of %s: %w", app.Package, err)
		}
		if again, _, err := hashFile(apkPath); err != nil || again != sum {
			return fmt.Errorf("inspecting the APK of %s: %w: %s changed while it was being verified", app.Package, ErrSourceChanged, apkPath)
		}
		checks := pol.CheckAPKFor(app, facts.APKFacts)
		rep.Checks = checks
		for _, c := range policy.Failed(checks) {
			pl.block(app.Package, Loc{File: apkPath}, "the APK fails the policy, so it is not copied: %s", c)
		}
		for _, ov := range app.Overrides {
			if !safeName.MatchString(ov) {
				pl.block(app.Package, Loc{pol.Source, app.Line}, "overrides entry %q is not a module name provkit will write into a build file (letters, digits and _ . + @ - only)", ov)
			}
		}
		if app.Privileged {
			if pl.perms == nil {
				var notes []string
				if pl.perms, notes, err = loadPermCatalog(pl.t, pl.o.APILevel); err != nil {
					return err
				}
				pl.p.PermissionSource = pl.perms.Source
				for _, n := range notes {
					pl.note("privileged permissions: %s", n)
				}
			}
			rep.Uncovered = pl.perms.uncovered(facts.RequestedPermissions, app.PrivappPermissions, app.DenyPrivappPermissions)
			if len(rep.Uncovered) > 0 {
				pl.block(app.Package, Loc{pol.Source, app.Line}, "the APK requests privileged permissions the policy neither grants (privappPermissions) nor denies (denyPrivappPermissions): %s; an undecided privileged permission stops a device with enforced allowlists from booting",
					strings.Join(rep.Uncovered, ", "))
			}
			for _, g := range app.PrivappPermissions {
				if !contains(facts.RequestedPermissions, g) {
					pl.note("%s: privappPermissions grants %s, which the APK does not request", app.Package, g)
				}
				if pl.perms.fromTree && pl.perms.declared[g] && !pl.perms.isPrivileged(g) {
					pl.note("%s: privappPermissions grants %s, which the tree does not declare privileged; the allowlist entry has no effect", app.Package, g)
				}
			}
		}
		rep.TargetSDK = facts.TargetSDK
		preproc := pl.o.Preprocessed
		if facts.Layout != nil {
			v := judgePresigned(facts, app.Privileged, pl.o.Preprocessed, pl.p.Format)
			preproc = v.Qualifies
			rep.LayoutProblems = v.Problems
			if v.Blocker != "" {
				pl.block(app.Package, Loc{File: apkPath}, "%s", v.Blocker)
			}
			if v.Note != "" {
				pl.note("%s: %s", app.Package, v.Note)
			}
			if v.Qualifies && len(v.CompressedDex) > 0 {
				pl.note("%s: %s compressed (allowed for an app that is not privileged, but ART must then extract it to /data; an APK with uncompressed dex saves that storage and memory)", app.Package, nameEntries(v.CompressedDex)+map[bool]string{true: " is", false: " are"}[len(v.CompressedDex) == 1])
			}
		}
		rep.Preprocessed = preproc
		pl.p.Apps = append(pl.p.Apps, rep)
		if pl.p.Blocked() {
			continue
		}
		pl.specs = append(pl.specs, &appSpec{app: app, facts: facts, module: app.ModuleName(), partition: app.PatchPartition(),
			dir: rep.Dir, apkName: app.ModuleName() + ".apk", apkPath: apkPath, apkSHA256: sum, dexPreopt: pl.o.DexPreopt, preproc: preproc})
	}
	if pl.p.Blocked() {
		// An APK that fails is never copied and nothing else is planned.
		return nil
	}
	before, err := evalChain(pl.t, pl.p.Product, pl.o.Vars)
	if err != nil {
		return err
	}
	ix, err := scanTree(pl.t, pl.o.ScanDirs)
	if err != nil {
		return err
	}
	for _, s := range pl.specs {
		if err := pl.writeModule(s, ix); err != nil {
			return err
		}
	}
	if err := pl.placeInProduct(before, ix); err != nil {
		return err
	}
	after, err := evalChain(pl.t, pl.p.Product, pl.o.Vars)
	if err != nil {
		return fmt.Errorf("re-evaluating the product after the planned edits: %w", err)
	}
	pl.p.Notes = append(pl.p.Notes, after.Notes...)
	switch {
	case pl.o.Verbose:
		pl.p.Notes = append(pl.p.Notes, after.Unresolved...)
	case len(after.Unresolved) == 1:
		pl.p.Notes = append(pl.p.Notes, after.Unresolved[0])
	case len(after.Unresolved) > 1:
		pl.note("%d product list entries use variables or functions provkit cannot resolve, and are not checked for conflicts (the first: %s); --verbose lists them", len(after.Unresolved), after.Unresolved[0])
	}
	pl.conflicts(ctx, after, ix)
	return pl.validate()
}

// writeModule plans the module directory of one app.
func (pl *planner) writeModule(s *appSpec, ix *index) error {
	name := pl.o.Policy.Metadata.Name
	// Another module of the same name, or files in the way.
	for _, m := range ix.modules {
		if m.Name == s.module && !m.Generated {
			pl.block(s.app.Package, m.Loc, "a module named %s already exists; set 'module:' in the policy to another name", s.module)
		}
	}
	buildFile := path.Join(s.dir, "Android.bp")
	other := path.Join(s.dir, "Android.mk")
	var body string
	if pl.p.Format == FormatMk {
		buildFile, other = other, buildFile
		body = s.mkModules()
	} else {
		body = s.bpModules()
	}
	ours := true
	existing, exists, err := pl.t.onDisk(buildFile)
	if err != nil {
		return err
	}
	if exists && !isGenerated(existing) {
		ours = false
	}
	if o, ok, err := pl.t.onDisk(other); err != nil {
		return err
	} else if ok && isGenerated(o) {
		// The format changed since the last run: the old generated file goes.
		pl.t.overlay[other] = nil
		pl.p.Changes = append(pl.p.Changes, Change{Path: other, Action: "delete", Reason: "replaced by " + path.Base(buildFile), Old: o})
	}
	var content string
	comment := "//"
	if pl.p.Format == FormatMk {
		comment = "#"
	}
	if ours {
		content = header(comment, name) + "\n"
		if pl.p.Format == FormatMk {
			content += "LOCAL_PATH := $(call my-dir)\n\n"
		}
		content += body
	} else {
		// Someone else's build file in the chosen directory: add a marked block at its end.
		stripped := removeMarked(existing)
		block := blockHead(comment, name) + body + blockTail(comment)
		if pl.p.Format == FormatMk && !bytes.Contains(stripped, []byte("LOCAL_PATH")) {
			block = blockHead(comment, name) + "LOCAL_PATH := $(call my-dir)\n" + body + blockTail(comment)
		}
		out, _ := blueprint.Append(stripped, block)
		content = string(out)
	}
	asIs := ""
	if s.preproc {
		asIs = ", installed byte for byte"
	}
	if err := pl.set(buildFile, []byte(content), false, fmt.Sprintf("defines %s (%s, %s partition%s)", s.module, map[string]string{FormatBp: "android_app_import", FormatMk: "BUILD_PREBUILT"}[pl.p.Format], s.partition, asIs)); err != nil {
		return err
	}
	apkRel := path.Join(s.dir, s.apkName)
	if cur, exists, err := hashFile(pl.t.abs(apkRel)); err != nil {
		return err
	} else if exists && cur != s.apkSHA256 && !ours {
		pl.block(s.app.Package, Loc{File: apkRel}, "the file exists and was not written by provkit; move it away or choose another --dir")
	} else if err := pl.setBinary(apkRel, s.apkPath, s.apkSHA256, "the verified APK of "+s.app.Package); err != nil {
		return err
	}
	files := map[string]string{}
	if s.app.Privileged {
		files[s.privappName()] = s.privappPermissionsXML(name)
	}
	if len(s.app.GrantPermissions) > 0 {
		files[s.defaultName()] = s.defaultPermissionsXML(name)
	}
	files[s.sysconfigName()] = s.sysconfigXML(name)
	for _, e := range s.etcFiles() {
		reason := map[string]string{"permissions": "privileged permission allowlist", "default-permissions": "pre-granted runtime permissions", "sysconfig": "user types the app is installed for"}[e[1]]
		if err := pl.ownedFile(s, path.Join(s.dir, e[0]), []byte(files[e[0]]), reason+", installed to /"+s.partition+"/etc/"+e[1]); err != nil {
			return err
		}
	}
	return nil
}

// ownedFile plans a file provkit owns; an existing different file that provkit did not write is
// a conflict rather than something to overwrite.
func (pl *planner) ownedFile(s *appSpec, rel string, content []byte, reason string) error {
	old, exists, err := pl.t.onDisk(rel)
	if err != nil {
		return err
	}
	if exists && !bytes.Equal(old, content) && !isGenerated(old) {
		pl.block(s.app.Package, Loc{File: rel}, "the file exists and was not written by provkit; move it away or choose another --dir")
		return nil
	}
	return pl.set(rel, content, false, reason)
}

// removeMarked drops provkit's marked blocks from src: each from the start of its begin line to
// the end of its end line, and the newline insertAt or blueprint.Append put before a block at the
// end of a file that has no final newline.
func removeMarked(src []byte) []byte {
	rs := markedRanges(src)
	if len(rs) == 0 {
		return src
	}
	var out []byte
	at := 0
	for _, r := range rs {
		start := r[0]
		if r[1] == len(src) && start > 0 {
			if src[len(src)-1] != '\n' && src[start-1] == '\n' {
				start-- // the newline insertAt or Append added
			}
		}
		if start < at {
			start = at
		}
		out = append(out, src[at:start]...)
		at = r[1]
	}
	return append(out, src[at:]...)
}

// placeInProduct makes the product makefile list the modules.
func (pl *planner) placeInProduct(before *Chain, ix *index) error {
	name := pl.o.Policy.Metadata.Name
	var modules []string
	for _, s := range pl.specs {
		modules = append(modules, s.module)
	}
	// Namespaces the modules live in that the product does not list yet.
	var namespaces []string
	if pl.p.Format == FormatBp {
		nsList := before.List(varNamespaces)
		for _, s := range pl.specs {
			ns, loc, ok := namespaceOf(ix, s.dir)
			if !ok {
				continue
			}
			listed := false
			for _, e := range nsList {
				if path.Clean(e.Word) == ns && e.Sure {
					listed = true
				}
			}
			if !listed && !safePath.MatchString(ns) {
				pl.block(s.app.Package, loc, "the Soong namespace directory %q cannot be written into PRODUCT_SOONG_NAMESPACES safely; choose another --dir", ns)
				continue
			}
			if !listed && !contains(namespaces, ns) {
				namespaces = append(namespaces, ns)
				pl.note("%s lives in the Soong namespace %s (%s); adding it to PRODUCT_SOONG_NAMESPACES", s.module, ns, loc)
			}
		}
	}
	prod := pl.p.Product
	src, err := pl.t.read(prod)
	if err != nil {
		return err
	}
	f := before.File(prod)
	if f == nil {
		return fmt.Errorf("reading product makefile %s: not evaluated", prod)
	}
	comment := "#"
	if pl.p.Placement == PlaceInherit {
		mkPath := path.Join(pl.p.Dir, "preinstall.mk")
		var b strings.Builder
		b.WriteString(header(comment, name))
		b.WriteString("\nPRODUCT_PACKAGES += \\\n")
		for i, m := range modules {
			b.WriteString("    " + m)
			if i < len(modules)-1 {
				b.WriteString(" \\")
			}
			b.WriteString("\n")
		}
		if len(namespaces) > 0 {
			b.WriteString("\nPRODUCT_SOONG_NAMESPACES += \\\n")
			for i, ns := range namespaces {
				b.WriteString("    " + ns)
				if i < len(namespaces)-1 {
					b.WriteString(" \\")
				}
				b.WriteString("\n")
			}
		}
		if err := pl.set(mkPath, []byte(b.String()), false, "adds "+strings.Join(modules, ", ")+" to PRODUCT_PACKAGES"); err != nil {
			return err
		}
		// Already inherited (by an earlier run, or by hand)? Then the product makefile stays.
		for _, fname := range before.Files() {
			ff := before.File(fname)
			for i := range ff.Stmts {
				if n, args, ok := makefile.Call(ff.Stmts[i].Text); ok && (n == "inherit-product" || n == "inherit-product-if-exists") && len(args) > 0 && path.Clean(args[0]) == mkPath && !ff.Stmts[i].Conditional() {
					return nil
				}
			}
		}
		block := blockHead(comment, name) + "$(call inherit-product, " + mkPath + ")\n" + blockTail(comment)
		off := insertionPoint(f)
		out := insertAt(src, off, block)
		return pl.set(prod, out, false, "inherits "+mkPath)
	}
	// Append placement: every module not yet surely listed goes into an existing list.
	out := src
	var missing []string
	for _, m := range modules {
		if sure, _, _ := before.Has(varPackages, m); !sure {
			missing = append(missing, m)
		}
	}
	var extra strings.Builder
	if len(missing) > 0 {
		idx := appendTarget(f)
		if idx >= 0 {
			off, _, err := f.ListInsertion(&f.Stmts[idx], "")
			if err != nil {
				return err
			}
			var ins strings.Builder
			for _, m := range missing {
				_, text, _ := f.ListInsertion(&f.Stmts[idx], m)
				ins.WriteString(text)
			}
			out = insertAt(out, off, ins.String())
		} else {
			extra.WriteString("PRODUCT_PACKAGES += " + strings.Join(missing, " ") + "\n")
		}
	}
	if len(namespaces) > 0 {
		extra.WriteString("PRODUCT_SOONG_NAMESPACES += " + strings.Join(namespaces, " ") + "\n")
	}
	if extra.Len() > 0 {
		out = insertAt(out, len(out), blockHead(comment, name)+extra.String()+blockTail(comment))
	}
	if bytes.Equal(out, src) {
		return nil
	}
	return pl.set(prod, out, false, "adds "+strings.Join(modules, ", ")+" to PRODUCT_PACKAGES")
}

// insertAt inserts text at off. At the end of a file without a final newline, the newline goes
// before the text instead of after it, so the file keeps ending without one and removeMarked can
// take exactly the inserted bytes back out.
func insertAt(src []byte, off int, text string) []byte {
	if off == len(src) && off > 0 && src[off-1] != '\n' {
		text = "\n" + strings.TrimSuffix(text, "\n")
	}
	out := make([]byte, 0, len(src)+len(text))
	out = append(out, src[:off]...)
	out = append(out, text...)
	return append(out, src[off:]...)
}

// insertionPoint is where the inherit-product block goes: after the last unconditional
// inherit-product of the file, unless a product list is reset with := after it (then the inherited
// packages would be dropped), in which case at the end of the file.
func insertionPoint(f *makefile.File) int {
	last := -1
	for i := range f.Stmts {
		s := &f.Stmts[i]
		if n, _, ok := makefile.Call(s.Text); ok && s.Kind == makefile.Expr && !s.Conditional() && strings.HasPrefix(n, "inherit-product") {
			last = i
		}
	}
	if last < 0 {
		return len(f.Src)
	}
	for i := last + 1; i < len(f.Stmts); i++ {
		s := &f.Stmts[i]
		if s.Kind == makefile.Assign && contains(productVars, s.Name) && s.Op != "+=" {
			return len(f.Src)
		}
	}
	return f.Stmts[last].End
}

// appendTarget is the index of the last unconditional continued "PRODUCT_PACKAGES +=" list of f
// not followed by a reset of PRODUCT_PACKAGES, or -1.
func appendTarget(f *makefile.File) int {
	target := -1
	for i := range f.Stmts {
		s := &f.Stmts[i]
		if s.Kind != makefile.Assign || s.Name != varPackages {
			continue
		}
		if s.Op != "+=" {
			target = -1
			continue
		}
		if s.Conditional() {
			continue
		}
		if _, _, err := f.ListInsertion(s, "x"); err == nil {
			target = i
		}
	}
	return target
}

// namespaceOf finds the Soong namespace a directory belongs to: the nearest directory at or above
// it whose Android.bp defines soong_namespace.
func namespaceOf(ix *index, dir string) (string, Loc, bool) {
	for d := dir; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if loc, ok := ix.namespaces[d]; ok {
			return d, loc, true
		}
	}
	return "", Loc{}, false
}

// conflicts finds what would defeat the apps in the patched tree.
func (pl *planner) conflicts(ctx context.Context, after *Chain, ix *index) {
	pkgs := after.List(varPackages)
	inProduct := func(m string) (bool, bool) {
		sure, maybe := false, false
		for _, e := range pkgs {
			if e.Word == m {
				sure = sure || e.Sure
				maybe = maybe || !e.Sure
			}
		}
		return sure, maybe
	}
	// inProductWhen says, for a module listed only under undecided conditions, on what it depends.
	inProductWhen := func(m string) string {
		for _, e := range pkgs {
			if e.Word == m && !e.Sure {
				return fmt.Sprintf("is in the product %s (PRODUCT_PACKAGES at %s)", after.CondHint(e.At), e.At)
			}
		}
		return "is in the product"
	}
	pl.artifactPaths(after)
	copies := copyDestinations(after)
	for _, s := range pl.specs {
		pkg := s.app.Package
		// The module must be listed, and surely.
		sure, maybe := inProduct(s.module)
		for _, d := range after.Drops(varPackages, s.module) {
			cond := ""
			if !d.Sure {
				cond = " (" + after.CondHint(d.By) + ")"
			}
			pl.block(pkg, d.By, "this assignment resets PRODUCT_PACKAGES after %s added %s, so the build drops it%s; make it += or move the addition after it", d.Was, s.module, cond)
		}
		if !sure {
			why := "it is not in the product's PRODUCT_PACKAGES after the patch"
			if maybe {
				why = "it is in PRODUCT_PACKAGES only under a condition provkit cannot decide"
			}
			pl.block(pkg, Loc{File: pl.p.Product}, "%s: %s", s.module, why)
		}
		// Other modules that remove ours.
		for _, m := range ix.modules {
			if m.Generated {
				continue
			}
			for _, ov := range m.Overrides {
				if ov != s.module && ov != pkg {
					continue
				}
				ms, mm := inProduct(m.Name)
				switch {
				case ms:
					pl.block(pkg, m.Loc, "module %s overrides %s and is in the product, so the build leaves %s out", m.Name, ov, s.module)
				case mm:
					pl.block(pkg, m.Loc, "module %s overrides %s and %s; then the build leaves %s out", m.Name, ov, inProductWhen(m.Name), s.module)
				default:
					pl.note("%s: module %s overrides %s; it is not in this product now, but adding it would remove %s", m.Loc, m.Name, ov, s.module)
				}
			}
			// Another module shipping the same package.
			other := m.PackageName
			if other == "" && m.APK != "" && pl.t.exists(m.APK) {
				other = pl.packageOf(ctx, m)
			}
			if other == "" && m.Manifest != "" {
				other, _ = manifestPackage(pl.t, m.Manifest)
			}
			if other == pkg && m.Name != s.module {
				ms, mm := inProduct(m.Name)
				if ms || mm {
					where := "is in the product"
					if !ms {
						where = inProductWhen(m.Name)
					}
					pl.block(pkg, m.Loc, "module %s already ships package %s and %s; two APKs with one package name make the build or the device pick one — remove it or list it in 'overrides:'", m.Name, pkg, where)
				} else {
					pl.note("%s: module %s also ships package %s (not in this product)", m.Loc, m.Name, pkg)
				}
			}
		}
		// Permission files for the package that are not ours: on which partition do they land?
		for _, pe := range ix.perms {
			if pe.Generated || pe.Package != pkg {
				continue
			}
			part, how := xmlPartition(pe.Loc.File, ix, copies)
			switch {
			case part == "":
				pl.note("%s: %s for %s is not installed by any module or PRODUCT_COPY_FILES provkit can see", pe.Loc, pe.Kind, pkg)
			case part != s.partition:
				pl.block(pkg, pe.Loc, "%s for %s is installed to /%s (%s) but the app goes to /%s; the platform reads it only for apps on its own partition — move it or set 'partition: %s' in the policy", pe.Kind, pkg, part, how, s.partition, part)
			default:
				pl.note("%s: another %s for %s on /%s (%s); the platform merges it with provkit's", pe.Loc, pe.Kind, pkg, part, how)
			}
		}
	}
}

// artifactPaths blocks an app on /system when the product enforces artifact path requirements
// strictly over a require-artifacts-in-path that covers system/ (as generic_system.mk does): the
// build then fails with "... produces files inside ... artifact path requirements".
func (pl *planner) artifactPaths(after *Chain) {
	var onSystem []*appSpec
	for _, s := range pl.specs {
		if s.partition == policy.PartitionSystem {
			onSystem = append(onSystem, s)
		}
	}
	if len(onSystem) == 0 || len(after.Enforce) == 0 {
		return
	}
	// A single-value product variable: the value nearest the product makefile wins.
	rank := func(file string) int {
		for i, f := range after.order {
			if f == file {
				return i
			}
		}
		return len(after.order)
	}
	enf := after.Enforce[0]
	for _, a := range after.Enforce[1:] {
		if rank(a.Loc.File) <= rank(enf.Loc.File) {
			enf = a
		}
	}
	var req *ArtifactReq
	for i, r := range after.ArtifactReqs {
		covers := r.Paths == nil
		for _, p := range r.Paths {
			if p == "system" || strings.HasPrefix(p, "system/") {
				covers = true
			}
		}
		if covers {
			req = &after.ArtifactReqs[i]
			break
		}
	}
	if req == nil {
		return
	}
	level := enf.Value
	if !enf.Known {
		level = "(a value provkit cannot resolve)"
	}
	for _, s := range onSystem {
		fix := fmt.Sprintf("set 'partition: product' (or system_ext) for %s in the policy, or list its files in PRODUCT_ARTIFACT_PATH_REQUIREMENT_ALLOWED_LIST", s.app.Package)
		var conds []string
		if !enf.Sure {
			conds = append(conds, after.CondHint(enf.Loc))
		}
		if !req.Sure {
			conds = append(conds, "(for the requirement) "+after.CondHint(req.Loc))
		}
		switch {
		case enf.Value == "strict" || enf.Value == "true":
			msg := fmt.Sprintf("%s := %s and %s calls require-artifacts-in-path over system/: a module of the device's own makefiles installed to /system fails the build; %s", varEnforceArtifacts, level, req.Loc, fix)
			if len(conds) > 0 {
				msg = "conditionally: " + msg + "; this holds " + strings.Join(conds, "; ")
			}
			pl.block(s.app.Package, enf.Loc, "%s", msg)
		case enf.Value == "relaxed" || !enf.Known:
			pl.note("%s: %s: %s := %s with require-artifacts-in-path at %s; the build may refuse a /system module from the device's makefiles; %s", s.app.Package, enf.Loc, varEnforceArtifacts, level, req.Loc, fix)
		}
	}
}

// packageOf reads (once) the package name of a module's prebuilt APK; "" when it cannot.
func (pl *planner) packageOf(ctx context.Context, m Module) string {
	if pkg, ok := pl.pkgOf[m.APK]; ok {
		return pkg
	}
	if pl.pkgOf == nil {
		pl.pkgOf = map[string]string{}
	}
	var pkg string
	var err error
	if pn, ok := pl.o.Inspector.(PackageNamer); ok {
		pkg, err = pn.APKPackage(ctx, pl.t.abs(m.APK))
	} else {
		var f *APKFacts
		if f, err = pl.o.Inspector.InspectAPK(ctx, pl.t.abs(m.APK)); err == nil {
			pkg = f.Package
		}
	}
	if err != nil {
		pl.note("%s: cannot read the package of %s (%v); it is not checked for duplicates", m.Loc, m.APK, err)
	}
	pl.pkgOf[m.APK] = pkg
	return pkg
}

// copyDestinations maps PRODUCT_COPY_FILES sources to their install partitions.
func copyDestinations(c *Chain) map[string][2]string {
	out := map[string][2]string{}
	for _, e := range c.List(varCopyFiles) {
		src, dst, ok := strings.Cut(e.Word, ":")
		if !ok {
			continue
		}
		dst = strings.TrimPrefix(dst, "/")
		part := strings.SplitN(dst, "/", 2)[0]
		switch part {
		case "system", "product", "system_ext", "vendor", "odm":
		default:
			continue
		}
		out[path.Clean(src)] = [2]string{part, "PRODUCT_COPY_FILES at " + e.At.String()}
	}
	return out
}

func xmlPartition(file string, ix *index, copies map[string][2]string) (string, string) {
	if c, ok := copies[file]; ok {
		return c[0], c[1]
	}
	for _, m := range ix.modules {
		for _, s := range m.Srcs {
			if s == file {
				return m.Partition, "module " + m.Name + " at " + m.Loc.String()
			}
		}
	}
	return "", ""
}

// validate parses every planned text file with the parser of its kind: provkit never writes a file
// its own parsers reject.
func (pl *planner) validate() error {
	for _, c := range pl.p.Changes {
		if c.Action == "delete" || c.Binary {
			continue
		}
		var err error
		switch {
		case strings.HasSuffix(c.Path, ".bp"):
			_, err = blueprint.Parse(c.Path, c.New)
		case strings.HasSuffix(c.Path, ".mk"):
			_, err = makefile.Parse(c.Path, c.New)
		case strings.HasSuffix(c.Path, ".xml"):
			err = wellFormed(c.New)
		}
		if err != nil {
			return fmt.Errorf("validating the planned %s (a provkit bug; nothing was written): %w", c.Path, err)
		}
	}
	return nil
}

func wellFormed(b []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
