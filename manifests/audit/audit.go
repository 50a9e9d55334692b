package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/firmware/buildprop"
	"github.com/provkit/provkit/firmware/layout"
	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/manifests/sysconfig"
)

// ScanOrder lists the partitions whose apps PackageManager scans, in its order
// (PackagePartitions: system, vendor, odm, oem, product, system_ext; priv-app before app in each).
var ScanOrder = []string{"system", "vendor", "odm", "oem", "product", "system_ext"}

// Limits on what an image may make the audit read.
const (
	maxAPKsPerDir  = 64      // APK files in one app directory (a base APK and its splits)
	maxConfigFiles = 4096    // XML files per configuration directory
	maxEntries     = 1 << 16 // entries of one app or priv-app directory
)

// Options tunes an audit.
type Options struct {
	// Jobs bounds the APKs read at once (default 4).
	Jobs int
}

// Report is the verdict on a firmware tree and its evidence.
type Report struct {
	Policy     string `json:"policy"`
	PolicyName string `json:"policyName"`
	Compliant  bool   `json:"compliant"`
	// Fingerprint is the device build fingerprint as init sets it (nil without any build.prop).
	Fingerprint *buildprop.Fingerprint `json:"fingerprint,omitempty"`
	// PartitionFingerprints are the ro.<partition>.build.fingerprint values.
	PartitionFingerprints map[string]string `json:"partitionFingerprints,omitempty"`
	// Checks are the image-level rules (fingerprint-allowed).
	Checks []policy.Check `json:"checks"`
	Apps   []AppReport    `json:"apps"`
	// Platform says what the audit learned of the platform itself.
	Platform Platform       `json:"platform"`
	Mounts   []layout.Mount `json:"mounts"`
	// Packages is the number of APKs indexed.
	Packages int `json:"packagesIndexed"`
	// Problems are defects found on the way that the platform would skip (malformed XML, build.prop
	// lines, unreadable APKs), each naming its file and line.
	Problems []string `json:"problems,omitempty"`
}

// Platform is what the image says about the platform.
type Platform struct {
	// PermissionDefinitions is where the platform permissions were read ("" when not found).
	PermissionDefinitions string `json:"permissionDefinitions,omitempty"`
	PrivilegedPermissions int    `json:"privilegedPermissions"`
	// PrivappControl is ro.control_privapp_permissions.
	PrivappControl string `json:"privappControl,omitempty"`
}

// AppReport is one mandated app's verdict and evidence.
type AppReport struct {
	Package   string `json:"package"`
	Compliant bool   `json:"compliant"`
	Found     bool   `json:"found"`
	// Partition and Path locate the APK the platform uses.
	Partition   string   `json:"partition,omitempty"`
	Path        string   `json:"path,omitempty"`
	SHA256      string   `json:"apkSha256,omitempty"`
	Size        int64    `json:"apkSize,omitempty"`
	Signers     []string `json:"signers,omitempty"`
	Lineage     []string `json:"lineage,omitempty"`
	VersionCode int64    `json:"versionCode,omitempty"`
	VersionName string   `json:"versionName,omitempty"`
	Privileged  bool     `json:"privileged"`
	// Copies are every APK declaring the package, in scan order.
	Copies []policy.APKCopy `json:"copies,omitempty"`
	Checks []policy.Check   `json:"checks"`
}

// apkFile is one indexed APK.
type apkFile struct {
	copy     policy.APKCopy
	fsys     fs.FS
	inner    string
	manifest *apk.Manifest
}

// Run audits the firmware tree parts (partition name -> file system) against pol.
func Run(ctx context.Context, pol *policy.Policy, parts map[string]fs.FS, opts Options) (*Report, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	t := layout.New(parts)
	rep := &Report{Policy: pol.Source, PolicyName: pol.Metadata.Name, Mounts: t.Mounts, Checks: []policy.Check{}, Apps: []AppReport{}}

	set, propProblems, err := t.Props()
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, propProblems...)
	fp := ""
	if len(set.Files) > 0 {
		f := set.DeviceFingerprint()
		rep.Fingerprint = &f
		fp = f.Value
		rep.PartitionFingerprints = set.PartitionFingerprints()
	}
	incomplete := rep.Fingerprint != nil && rep.Fingerprint.Derived && len(rep.Fingerprint.Unknown) > 0
	if incomplete {
		fp = "" // init would set "unknown" parts; no certified build has them
	}
	fpCheck := pol.CheckFingerprint(fp)
	switch {
	case incomplete && len(pol.Devices.Fingerprints) > 0:
		fpCheck.Detail = fmt.Sprintf("the build fingerprint is unknown: no ro.build.fingerprint, and deriving it as init does lacks %s (is the system partition missing?)", strings.Join(rep.Fingerprint.Unknown, ", "))
	case rep.Fingerprint != nil && rep.Fingerprint.Derived && len(pol.Devices.Fingerprints) > 0:
		fpCheck.Detail += " (no ro.build.fingerprint in build.prop: derived from its parts as init does)"
	}
	rep.Checks = append(rep.Checks, fpCheck)
	rep.Platform.PrivappControl = set.Value("ro.control_privapp_permissions")

	platform, where, err := platformPermissions(t)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.Platform.PermissionDefinitions = where
	for _, d := range platform {
		if d.Privileged() {
			rep.Platform.PrivilegedPermissions++
		}
	}

	index, problems, err := indexAPKs(ctx, t, opts.Jobs)
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, problems...)
	byPkg := map[string][]*apkFile{}
	for _, a := range index {
		byPkg[a.manifest.Package] = append(byPkg[a.manifest.Package], a)
	}
	rep.Packages = len(index)

	cfg, problems, err := readConfigs(t)
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, problems...)

	rep.Compliant = fpCheck.Pass
	for i := range pol.Apps {
		app := &pol.Apps[i]
		ar, err := auditApp(ctx, app, byPkg, platform, where != "", cfg, rep.Platform.PrivappControl)
		if err != nil {
			return nil, err
		}
		rep.Compliant = rep.Compliant && ar.Compliant
		rep.Apps = append(rep.Apps, *ar)
	}
	return rep, nil
}

// platformPermissions reads the permissions the platform package defines.
func platformPermissions(t *layout.Tree) (map[string]apk.DeclaredPermission, string, error) {
	const dev = "/system/framework/framework-res.apk"
	part, inner, err := t.Resolve(dev)
	if err != nil {
		return nil, "", nil
	}
	fsys, _ := t.FS(part)
	r, size, closer, err := openReaderAt(fsys, inner)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", dev, err)
	}
	defer closer.Close()
	pkg, decls, err := apk.ReadDeclaredPermissions(r, size)
	if err != nil {
		return nil, "", fmt.Errorf("reading the platform permissions in %s: %w", dev, err)
	}
	if pkg != "android" {
		return nil, "", fmt.Errorf("%s declares package %q, not android: its permissions are not the platform's", dev, pkg)
	}
	out := map[string]apk.DeclaredPermission{}
	for _, d := range decls {
		out[d.Name] = d
	}
	return out, dev, nil
}

// openReaderAt opens a file for random access.
func openReaderAt(fsys fs.FS, name string) (io.ReaderAt, int64, io.Closer, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("not a regular file")
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, 0, nil, fmt.Errorf("the file system does not offer random access (io.ReaderAt)")
	}
	return ra, fi.Size(), f, nil
}

// indexAPKs reads the manifest of every APK in the app directories, in scan order.
func indexAPKs(ctx context.Context, t *layout.Tree, jobs int) ([]*apkFile, []string, error) {
	var files []*apkFile
	var problems []string
	for _, part := range ScanOrder {
		fsys, ok := t.FS(part)
		if !ok {
			continue
		}
		dirs := []string{"priv-app", "app"}
		if part == "oem" {
			dirs = []string{"app"}
		}
		for _, dir := range dirs {
			ents, err := fs.ReadDir(fsys, dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("reading /%s/%s: %w", part, dir, err)
			}
			if len(ents) > maxEntries {
				return nil, nil, fmt.Errorf("reading /%s/%s: %d entries, more than %d", part, dir, len(ents), maxEntries)
			}
			scanDir := "/" + part + "/" + dir
			for _, e := range ents {
				name := path.Join(dir, e.Name())
				switch {
				case e.IsDir():
					sub, err := fs.ReadDir(fsys, name)
					if err != nil {
						problems = append(problems, fmt.Sprintf("/%s/%s: %v", part, name, err))
						continue
					}
					n := 0
					for _, s := range sub {
						if !s.Type().IsRegular() || !strings.HasSuffix(s.Name(), ".apk") {
							continue
						}
						if n++; n > maxAPKsPerDir {
							problems = append(problems, fmt.Sprintf("/%s/%s: more than %d APKs, the rest skipped", part, name, maxAPKsPerDir))
							break
						}
						files = append(files, &apkFile{fsys: fsys, inner: path.Join(name, s.Name()),
							copy: policy.APKCopy{Partition: part, Path: "/" + part + "/" + path.Join(name, s.Name()), ScanDir: scanDir, Privileged: dir == "priv-app"}})
					}
				case e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".apk"):
					files = append(files, &apkFile{fsys: fsys, inner: name,
						copy: policy.APKCopy{Partition: part, Path: "/" + part + "/" + name, ScanDir: scanDir, Privileged: dir == "priv-app"}})
				}
			}
		}
	}
	// Read the manifests with a bounded pool; keep scan order.
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			r, size, closer, err := openReaderAt(f.fsys, f.inner)
			if err != nil {
				errs[i] = err
				return
			}
			defer closer.Close()
			f.manifest, errs[i] = apk.ReadManifest(r, size)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var out []*apkFile
	for i, f := range files {
		if errs[i] != nil {
			if !errors.Is(errs[i], apk.ErrMalformed) && !errors.Is(errs[i], fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("reading %s: %w", f.copy.Path, errs[i])
			}
			problems = append(problems, fmt.Sprintf("%s: not a readable APK, the platform skips it: %v", f.copy.Path, errs[i]))
			continue
		}
		if f.manifest.Package == "" {
			problems = append(problems, fmt.Sprintf("%s: the manifest names no package, the platform skips it", f.copy.Path))
			continue
		}
		f.copy.VersionCode = f.manifest.VersionCode
		out = append(out, f)
	}
	return dedupeClusters(out), problems, nil
}

// dedupeClusters keeps one APK per package and app directory: a directory with a base APK and
// split APKs (same package) is one package to the platform. The base is the APK named after its
// directory, else the first by name.
func dedupeClusters(files []*apkFile) []*apkFile {
	type key struct{ dir, pkg string }
	best := map[key]int{}
	var out []*apkFile
	for _, f := range files {
		dir := path.Dir(f.copy.Path)
		if dir == f.copy.ScanDir { // an APK file directly in app/
			out = append(out, f)
			continue
		}
		k := key{dir, f.manifest.Package}
		if i, ok := best[k]; ok {
			if path.Base(f.copy.Path) == path.Base(dir)+".apk" {
				out[i] = f
			}
			continue
		}
		best[k] = len(out)
		out = append(out, f)
	}
	return out
}

// configs holds the configuration files of the image.
type configs struct {
	privapp   map[string][]sysconfig.Privapp // by allowlist group: system, vendor (vendor+odm), product, system_ext
	userTypes map[string][]sysconfig.UserTypes
	grants    map[string][]sysconfig.Grant
}

// privappGroup maps a partition to the SystemConfig allowlist its privileged apps use.
func privappGroup(part string) string {
	switch part {
	case "vendor", "odm":
		return "vendor"
	case "product", "system_ext":
		return part
	}
	return "system"
}

func readConfigs(t *layout.Tree) (*configs, []string, error) {
	c := &configs{privapp: map[string][]sysconfig.Privapp{}, userTypes: map[string][]sysconfig.UserTypes{}, grants: map[string][]sysconfig.Grant{}}
	var problems []string
	xmlFiles := func(part, dir string) ([]string, fs.FS, error) {
		fsys, ok := t.FS(part)
		if !ok {
			return nil, nil, nil
		}
		ents, err := fs.ReadDir(fsys, dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading /%s/%s: %w", part, dir, err)
		}
		var out []string
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".xml") {
				out = append(out, path.Join(dir, e.Name()))
			}
		}
		if len(out) > maxConfigFiles {
			return nil, nil, fmt.Errorf("reading /%s/%s: %d XML files, more than %d", part, dir, len(out), maxConfigFiles)
		}
		sort.Strings(out)
		return out, fsys, nil
	}
	read := func(fsys fs.FS, name, dev string) ([]byte, error) {
		r, size, closer, err := openReaderAt(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dev, err)
		}
		defer closer.Close()
		if size > sysconfig.MaxFileSize {
			return nil, fmt.Errorf("reading %s: %d bytes: %w", dev, size, sysconfig.ErrTooLarge)
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, 0); err != nil && !(err == io.EOF && size == 0) {
			return nil, fmt.Errorf("reading %s: %w", dev, err)
		}
		return b, nil
	}
	for _, part := range ScanOrder {
		for _, dir := range []string{"etc/sysconfig", "etc/permissions"} {
			names, fsys, err := xmlFiles(part, dir)
			if err != nil {
				return nil, nil, err
			}
			for _, n := range names {
				dev := "/" + part + "/" + n
				data, err := read(fsys, n, dev)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				cf, err := sysconfig.ParseConfig(dev, data)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				problems = append(problems, cf.Problems...)
				if part != "oem" { // SystemConfig does not take privapp-permissions from /oem
					g := privappGroup(part)
					c.privapp[g] = append(c.privapp[g], cf.Privapp...)
				}
				for _, u := range cf.UserTypes {
					c.userTypes[u.Package] = append(c.userTypes[u.Package], u)
				}
			}
		}
		if part == "oem" {
			continue // default-permissions of /oem count only on embedded devices
		}
		names, fsys, err := xmlFiles(part, "etc/default-permissions")
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			dev := "/" + part + "/" + n
			data, err := read(fsys, n, dev)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			grants, probs, err := sysconfig.ParseDefaultPermissions(dev, data)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			problems = append(problems, probs...)
			for _, g := range grants {
				c.grants[g.Package] = append(c.grants[g.Package], g)
			}
		}
	}
	return c, problems, nil
}

func auditApp(ctx context.Context, app *policy.App, byPkg map[string][]*apkFile, platform map[string]apk.DeclaredPermission, platformKnown bool, cfg *configs, control string) (*AppReport, error) {
	ar := &AppReport{Package: app.Package}
	copies := byPkg[app.Package]
	var f policy.ImageAppFacts
	for _, c := range copies {
		f.Copies = append(f.Copies, c.copy)
	}
	ar.Copies = f.Copies
	if len(copies) > 0 {
		used := copies[0]
		ar.Found = true
		ar.Partition, ar.Path, ar.Privileged = used.copy.Partition, used.copy.Path, used.copy.Privileged
		r, size, closer, err := openReaderAt(used.fsys, used.inner)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", used.copy.Path, err)
		}
		res, err := apk.Verify(ctx, r, size, apk.Options{})
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", used.copy.Path, err)
		}
		facts := policy.APKFactsOf(res)
		f.APK = &facts
		ar.SHA256, ar.Size, ar.Signers, ar.Lineage = res.SHA256, res.Size, facts.Signers, facts.Lineage
		ar.VersionCode, ar.VersionName = used.manifest.VersionCode, used.manifest.VersionName
		f.RequestedPermissions = used.manifest.RequestedPermissions
		f.TargetSDK = used.manifest.TargetSDK
		f.PlatformPermissionsKnown = platformKnown
		for _, p := range f.RequestedPermissions {
			if d, ok := platform[p]; ok && d.Privileged() {
				f.PrivilegedRequested = append(f.PrivilegedRequested, p)
			}
		}
		f.PrivappAllow, f.PrivappDeny = map[string]string{}, map[string]string{}
		for _, pa := range cfg.privapp[privappGroup(used.copy.Partition)] {
			if pa.Package != app.Package {
				continue
			}
			for _, e := range pa.Allow {
				f.PrivappAllow[e.Name] = e.Where()
			}
			for _, e := range pa.Deny {
				f.PrivappDeny[e.Name] = e.Where()
			}
		}
		f.PrivappControl = control
	}
	f.DefaultGrants = map[string]string{}
	for _, g := range cfg.grants[app.Package] {
		if _, ok := f.DefaultGrants[g.Permission]; !ok {
			f.DefaultGrants[g.Permission] = fmt.Sprintf("%s:%d", g.File, g.Line)
		}
	}
	if uts := cfg.userTypes[app.Package]; len(uts) > 0 {
		f.UserTypes = &policy.UserTypeFacts{}
		for _, u := range uts {
			for _, e := range u.InstallIn {
				f.UserTypes.InstallIn = append(f.UserTypes.InstallIn, policy.Located{Name: e.Name, Where: e.Where()})
			}
			for _, e := range u.DoNotInstallIn {
				f.UserTypes.DoNotInstallIn = append(f.UserTypes.DoNotInstallIn, policy.Located{Name: e.Name, Where: e.Where()})
			}
		}
	}
	for _, o := range app.Overrides {
		for _, c := range byPkg[o] {
			f.OverriddenPresent = append(f.OverriddenPresent, policy.Located{Name: o, Where: c.copy.Path})
		}
	}
	ar.Checks = app.CheckImage(f)
	ar.Compliant = policy.AllPass(ar.Checks)
	return ar, nil
}
