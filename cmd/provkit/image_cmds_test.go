package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/cmd/provkit/internal/root"
	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/internal/testimage"
	"github.com/provkit/provkit/internal/testimage/lpwrite"
	"github.com/provkit/provkit/internal/testtool"
)

const (
	auditPkg         = "ru.oneme.app"
	auditFingerprint = "acme/phone/phone:14/AP1A.240505.004/7:user/release-keys"
)

const privappXML = `<?xml version="1.0" encoding="utf-8"?>
<!-- Max installs its own updates. -->
<permissions>
    <privapp-permissions package="ru.oneme.app">
        <permission name="android.permission.INSTALL_PACKAGES"/>
        <permission name='android.permission.MANAGE_USERS'/>
    </privapp-permissions>
</permissions>
`

const defaultsXML = `<exceptions>
    <exception package="ru.oneme.app">
        <permission name="android.permission.POST_NOTIFICATIONS" fixed="false"/>
    </exception>
</exceptions>
`

const sysconfigXML = `<config>
    <install-in-user-type package="ru.oneme.app">
        <install-in user-type="FULL"/>
        <install-in user-type="SYSTEM"/>
    </install-in-user-type>
</config>
`

type auditAPKs struct {
	good, old, wrongSigner, tampered, calc, framework []byte
	pin                                               string
}

func buildAuditAPKs(t *testing.T) *auditAPKs {
	signer := testapk.NewSigner(t, "Max release")
	other := testapk.NewSigner(t, "Somebody else")
	perms := []string{"android.permission.POST_NOTIFICATIONS", "android.permission.INSTALL_PACKAGES", "android.permission.MANAGE_USERS"}
	a := &auditAPKs{pin: signer.CertSHA256()}
	a.good = testapk.Build(t, testapk.Spec{Package: auditPkg, VersionCode: 12, VersionName: "12.0", Permissions: perms, Signer: signer, Padding: 200 << 10})
	a.old = testapk.Build(t, testapk.Spec{Package: auditPkg, VersionCode: 5, Permissions: perms, Signer: signer})
	a.wrongSigner = testapk.Build(t, testapk.Spec{Package: auditPkg, VersionCode: 12, Permissions: perms, Signer: other})
	a.calc = testapk.Build(t, testapk.Spec{Package: "com.example.calc", VersionCode: 1, Signer: other})
	a.framework = testapk.BuildFramework(t, []testapk.Permission{
		{Name: "android.permission.INSTALL_PACKAGES", ProtectionLevel: "signature|privileged"},
		{Name: "android.permission.MANAGE_USERS", ProtectionLevel: "signature|privileged"},
		{Name: "android.permission.POST_NOTIFICATIONS", ProtectionLevel: "dangerous"},
	})
	// Tampered: one byte of META-INF/MANIFEST.MF changed after signing.
	a.tampered = bytes.Clone(a.good)
	zr, err := zip.NewReader(bytes.NewReader(a.tampered), int64(len(a.tampered)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == "META-INF/MANIFEST.MF" {
			off, _ := f.DataOffset()
			a.tampered[off+int64(f.CompressedSize64)/2] ^= 0xff
		}
	}
	return a
}

// firmware is a tree per partition.
type firmware map[string][]testimage.File

func (a *auditAPKs) compliant() firmware {
	return firmware{
		"system": {
			{Path: "system/build.prop", Data: []byte("ro.build.fingerprint=" + auditFingerprint + "\nro.control_privapp_permissions=enforce\n")},
			{Path: "system/framework/framework-res.apk", Data: a.framework},
			{Path: "system/app/Calculator/Calculator.apk", Data: a.calc},
			{Path: "system/etc/permissions/privapp-permissions-platform.xml", Data: []byte("<permissions/>\n")},
			{Path: "system/bin/su", Data: []byte("#!/bin/sh\n"), Mode: 0o4755},
			{Path: "system/product", Link: "/product"},
			{Path: "product", Dir: true},
			{Path: "init", Link: "/system/bin/init"},
		},
		"product": {
			{Path: "etc/build.prop", Data: []byte("ro.product.build.fingerprint=" + auditFingerprint + "\n")},
			{Path: "priv-app/Max/Max.apk", Data: a.good},
			{Path: "etc/permissions/privapp-permissions-max.xml", Data: []byte(privappXML)},
			{Path: "etc/default-permissions/default-permissions-max.xml", Data: []byte(defaultsXML)},
			{Path: "etc/sysconfig/preinstalled-packages-max.xml", Data: []byte(sysconfigXML)},
		},
	}
}

func (fw firmware) with(part, path string, data []byte) firmware {
	out := firmware{}
	for p, files := range fw {
		for _, f := range files {
			if p == part && f.Path == path {
				continue
			}
			out[p] = append(out[p], f)
		}
	}
	if data != nil {
		out[part] = append(out[part], testimage.File{Path: path, Data: data})
	}
	return out
}

// images builds system.img (ext4 through img2simg, as fastboot flashes it) and product.img (EROFS
// lz4hc, as Android builds it) and returns their paths.
func (fw firmware) images(t *testing.T) (system, product string) {
	build := func(part string) string {
		dir := t.TempDir()
		testimage.WriteTree(t, dir, fw[part])
		if part == "system" {
			return testimage.Sparse(t, testimage.Ext4(t, dir, 8))
		}
		return testimage.EROFS(t, dir, "-zlz4hc")
	}
	return build("system"), build("product")
}

// buildAuditFixtures writes, under dir, one directory of images per scenario, a super image, a
// factory zip and the policy.
func buildAuditFixtures(t *testing.T, dir string) {
	a := buildAuditAPKs(t)
	noManage := strings.Replace(privappXML, "<permission name='android.permission.MANAGE_USERS'/>", "", 1)
	excluded := strings.Replace(sysconfigXML, `<install-in user-type="SYSTEM"/>`, `<do-not-install-in user-type="android.os.usertype.full.SYSTEM"/>`, 1)
	c := a.compliant()
	scenarios := map[string]firmware{
		"compliant":         c,
		"missing":           c.with("product", "priv-app/Max/Max.apk", nil),
		"renamed":           c.with("product", "priv-app/Max/Max.apk", nil).with("product", "priv-app/Zz/base.apk", a.good),
		"wrong-partition":   c.with("product", "priv-app/Max/Max.apk", nil).with("system", "system/priv-app/Max/Max.apk", a.good).with("system", "system/etc/permissions/privapp-permissions-max.xml", []byte(privappXML)),
		"wrong-signer":      c.with("product", "priv-app/Max/Max.apk", a.wrongSigner),
		"too-old":           c.with("product", "priv-app/Max/Max.apk", a.old),
		"tampered":          c.with("product", "priv-app/Max/Max.apk", a.tampered),
		"privapp-missing":   c.with("product", "etc/permissions/privapp-permissions-max.xml", []byte(noManage)),
		"grant-missing":     c.with("product", "etc/default-permissions/default-permissions-max.xml", nil),
		"excluded":          c.with("product", "etc/sysconfig/preinstalled-packages-max.xml", []byte(excluded)),
		"not-certified":     c.with("system", "system/build.prop", []byte("ro.build.fingerprint=acme/phone/phone:14/AP1A.240505.004/8:user/release-keys\n")),
		"shadowed":          c.with("system", "system/app/MaxOld/MaxOld.apk", a.old),
		"malformed-privapp": c.with("product", "etc/permissions/privapp-permissions-max.xml", []byte(strings.Replace(privappXML, "<permission name=\"android.permission.INSTALL_PACKAGES\"/>", "<permission name=\"android.permission.INSTALL_PACKAGES\">", 1))),
	}
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	var compliantSystem, compliantProduct string
	for _, n := range names {
		sys, prod := scenarios[n].images(t)
		d := filepath.Join(dir, n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		copyTo(t, sys, filepath.Join(d, "system.img"))
		copyTo(t, prod, filepath.Join(d, "product.img"))
		if n == "compliant" {
			compliantSystem, compliantProduct = sys, prod
		}
	}
	// The compliant partitions as logical partitions of an A/B super image (slot a), sparse.
	raw := testimage.Super(t, lpwrite.Spec{DeviceSize: 32 << 20, MetadataMaxSize: 65536, Slots: 3, Alignment: 1 << 20, Partitions: []lpwrite.Partition{
		{Name: "system_a", Attributes: 1, Data: unsparse(t, compliantSystem)},
		{Name: "system_b", Attributes: 1},
		{Name: "product_a", Attributes: 1, Data: testimage.Read(t, compliantProduct)},
		{Name: "product_b", Attributes: 1},
	}})
	copyTo(t, testimage.Sparse(t, raw), filepath.Join(dir, "super.img"))
	// A factory zip as Google ships them (deflated images in a nested image zip).
	fz := testimage.FactoryZip(t, t.TempDir(), "phone", "ap1a.240505.004", map[string]string{"system.img": compliantSystem, "product.img": compliantProduct}, true)
	copyTo(t, fz, filepath.Join(dir, "factory.zip"))
	// The same partitions as a full OTA payload (REPLACE_XZ and ZERO operations).
	prodRaw := testimage.Read(t, compliantProduct)
	if pad := len(prodRaw) % 4096; pad != 0 {
		prodRaw = append(prodRaw, make([]byte, 4096-pad)...)
	}
	pl := testimage.FullPayload(t, map[string][]byte{"system": unsparse(t, compliantSystem), "product": prodRaw})
	os.WriteFile(filepath.Join(dir, "payload.bin"), pl, 0o644)
	// A corrupt system image: the ext4 superblock of the expanded image damaged.
	bad := unsparse(t, compliantSystem)
	bad[1024+4] ^= 0xff
	if err := os.MkdirAll(filepath.Join(dir, "corrupt"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "corrupt", "system.img"), bad, 0o644)
	copyTo(t, compliantProduct, filepath.Join(dir, "corrupt", "product.img"))
	policy := fmt.Sprintf(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger, authority: "Ministry of Digital Development"}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "%s", name: release key}]
    minVersionCode: 10
    partition: product
    privileged: true
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
    privappPermissions: [android.permission.INSTALL_PACKAGES]
devices:
  fingerprints: ["%s"]
`, a.pin, auditFingerprint)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644)
	os.WriteFile(filepath.Join(dir, "pin"), []byte(a.pin), 0o644)
	sum := sha256sum(a.good)
	os.WriteFile(filepath.Join(dir, "apk.sha256"), []byte(sum), 0o644)
}

func sha256sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func unsparse(t *testing.T, simg string) []byte {
	t.Helper()
	testtool.Require(t, "simg2img")
	out := filepath.Join(t.TempDir(), "raw.img")
	if b, err := exec.Command("simg2img", simg, out).CombinedOutput(); err != nil {
		t.Fatalf("simg2img: %v\n%s", err, b)
	}
	return testimage.Read(t, out)
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, testimage.Read(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImageScripts runs testdata/image/*.txtar against images built by the reference tools
// (mke2fs, mkfs.erofs, img2simg; APKs by aapt and apksigner), found under $FIX.
func TestImageScripts(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "mkfs.erofs", "img2simg", "simg2img", "aapt", "apksigner")
	fix := t.TempDir()
	buildAuditFixtures(t, fix)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/image",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", os.Getenv("PATH"))
			env.Setenv("FIX", fix)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": cmdStatus},
	})
}

// run runs provkit in-process and returns its stdout, stderr and exit code.
func run(args ...string) (string, string, int) {
	ios, _, out, errOut := iostreams.Test()
	code := root.Run(context.Background(), ios, args)
	return out.String(), errOut.String(), code
}

type lsEntry struct {
	Name, Type, Mode, Target string
	Size                     int64
	UID, GID                 uint32
	Ino                      uint64
	SELinux                  string
}

func lsJSON(t *testing.T, args ...string) []lsEntry {
	t.Helper()
	out, errOut, code := run(append([]string{"image", "ls", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("provkit image ls %v: exit %d: %s", args, code, errOut)
	}
	var doc struct{ Entries []lsEntry }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Entries
}

// TestImageLsCatMatchDebugfs lists and reads an Android-like ext4 system image with provkit and
// with debugfs, raw and through img2simg (debugfs then reads simg2img's expansion).
func TestImageLsCatMatchDebugfs(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "img2simg", "simg2img", "aapt", "apksigner")
	a := buildAuditAPKs(t)
	src := t.TempDir()
	testimage.WriteTree(t, src, a.compliant()["system"])
	raw := filepath.Join(t.TempDir(), "system.img")
	copyTo(t, testimage.Ext4(t, src, 8), raw)
	simg := filepath.Join(t.TempDir(), "system.img")
	copyTo(t, testimage.Sparse(t, raw), simg)
	expanded := filepath.Join(t.TempDir(), "expanded.img")
	if b, err := exec.Command("simg2img", simg, expanded).CombinedOutput(); err != nil {
		t.Fatalf("simg2img: %v %s", err, b)
	}
	lsRe := regexp.MustCompile(`^/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/$`)
	for _, img := range []struct{ provkit, debugfs string }{{raw, raw}, {simg, expanded}} {
		for _, dir := range []string{"/", "/system", "/system/app/Calculator", "/system/bin", "/system/etc/permissions", "/system/framework"} {
			out, err := exec.Command("debugfs", "-R", "ls -p "+dir, img.debugfs).Output()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				m := lsRe.FindStringSubmatch(l)
				if m == nil || m[5] == "." || m[5] == ".." {
					continue
				}
				mode, _ := strconv.ParseUint(m[2], 8, 32)
				want[m[5]] = fmt.Sprintf("ino=%s mode=%04o uid=%s gid=%s size=%s", m[1], mode&0o7777, m[3], m[4], m[6])
			}
			got := map[string]string{}
			for _, e := range lsJSON(t, img.provkit, "system:"+dir) {
				size := strconv.FormatInt(e.Size, 10)
				if e.Type == "dir" {
					size = "" // debugfs ls -p leaves a directory's size out
				}
				got[e.Name] = fmt.Sprintf("ino=%d mode=%s uid=%d gid=%d size=%s", e.Ino, e.Mode, e.UID, e.GID, size)
				if e.SELinux != "u:object_r:system_file:s0" && e.Name != "lost+found" {
					t.Errorf("%s/%s: SELinux label %q", dir, e.Name, e.SELinux)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s:\nprovkit %v\ndebugfs %v", filepath.Base(img.provkit), dir, got, want)
			}
		}
		for _, f := range []string{"/system/build.prop", "/system/app/Calculator/Calculator.apk", "/system/framework/framework-res.apk"} {
			want, err := exec.Command("debugfs", "-R", "cat "+f, img.debugfs).Output()
			if err != nil {
				t.Fatal(err)
			}
			got, errOut, code := run("image", "cat", img.provkit, f)
			if code != 0 || got != string(want) {
				t.Errorf("cat %s: exit %d %s; %d bytes, debugfs %d", f, code, errOut, len(got), len(want))
			}
		}
	}
}

// TestImageLsCatMatchFsckErofs lists and reads an lz4hc EROFS product image with provkit and
// compares with what fsck.erofs --extract writes out.
func TestImageLsCatMatchFsckErofs(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs", "aapt", "apksigner")
	a := buildAuditAPKs(t)
	src := t.TempDir()
	testimage.WriteTree(t, src, a.compliant()["product"])
	img := filepath.Join(t.TempDir(), "product.img")
	copyTo(t, testimage.EROFS(t, src, "-zlz4hc"), img)
	out := filepath.Join(t.TempDir(), "x")
	if b, err := exec.Command("fsck.erofs", "--extract="+out, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v %s", err, b)
	}
	for _, dir := range []string{"/", "/etc", "/etc/permissions", "/priv-app/Max"} {
		ents, err := os.ReadDir(filepath.Join(out, dir))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, e := range ents {
			fi, _ := e.Info()
			size := fi.Size()
			if fi.IsDir() {
				size = -1
			}
			want[e.Name()] = fmt.Sprintf("%s %d", fi.Mode().Perm(), size)
		}
		got := map[string]string{}
		for _, e := range lsJSON(t, img, "/product"+strings.TrimSuffix(dir, "/")) {
			size := e.Size
			if e.Type == "dir" {
				size = -1
			}
			var bits uint32
			fmt.Sscanf(e.Mode, "%o", &bits)
			got[e.Name] = fmt.Sprintf("%s %d", os.FileMode(bits).Perm(), size)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\nprovkit    %v\nfsck.erofs %v", dir, got, want)
		}
	}
	for _, f := range []string{"priv-app/Max/Max.apk", "etc/permissions/privapp-permissions-max.xml", "etc/build.prop"} {
		want := testimage.Read(t, filepath.Join(out, f))
		got, errOut, code := run("image", "cat", img, "product:/"+f)
		if code != 0 || got != string(want) {
			t.Errorf("cat %s: exit %d %s; %d bytes, fsck.erofs %d", f, code, errOut, len(got), len(want))
		}
	}
}

// TestImageLsCatDanglingLink: ls lists a dangling symbolic link as the link (as ls -l does),
// and cat says it is a link to a path that is not in the image, on ext4 and EROFS alike.
func TestImageLsCatDanglingLink(t *testing.T) {
	testtool.Require(t, "mke2fs", "mkfs.erofs")
	src := t.TempDir()
	testimage.WriteTree(t, src, []testimage.File{
		{Path: "etc/hosts", Data: []byte("127.0.0.1 localhost\n")},
		{Path: "etc/dangling", Link: "/etc/nothing"},
	})
	dir := t.TempDir()
	for _, img := range []string{testimage.Ext4(t, src, 4), testimage.EROFS(t, src)} {
		p := filepath.Join(dir, "system-"+filepath.Base(img))
		copyTo(t, img, p)
		out, errOut, code := run("image", "ls", "--partition", "system", p, "system:/etc/dangling")
		if code != 0 || !strings.HasSuffix(out, " dangling -> /etc/nothing\n") || !strings.HasPrefix(out, "lrwxrwxrwx ") {
			t.Errorf("%s: ls: exit %d, stdout %q, stderr %q", p, code, out, errOut)
		}
		entries := lsJSON(t, "--partition", "system", p, "system:/etc/dangling")
		if len(entries) != 1 || entries[0].Type != "symlink" || entries[0].Target != "/etc/nothing" {
			t.Errorf("%s: ls --json: %+v", p, entries)
		}
		out, errOut, code = run("image", "cat", "--partition", "system", p, "system:/etc/dangling")
		if code != 1 || out != "" || !strings.Contains(errOut, `a symbolic link to "/etc/nothing", which is not in the image`) {
			t.Errorf("%s: cat: exit %d, stdout %q, stderr %q", p, code, out, errOut)
		}
		// A path that does not exist at all is still an error for both.
		if _, errOut, code := run("image", "ls", "--partition", "system", p, "system:/etc/none"); code != 1 || !strings.Contains(errOut, "does not exist") {
			t.Errorf("%s: ls of a missing path: exit %d, %q", p, code, errOut)
		}
		// The message names the whole path asked for, not the path inside the partition.
		_, errOut, code = run("image", "cat", "--partition", "system", p, "/system/etc/none")
		if code != 1 || !strings.Contains(errOut, "reading /system/etc/none in "+p+": file does not exist") || strings.Contains(errOut, "open ") {
			t.Errorf("%s: cat of a missing path: exit %d, %q", p, code, errOut)
		}
		_, errOut, _ = run("image", "ls", "--partition", "system", p, "/system/etc/none")
		if !strings.Contains(errOut, "listing /system/etc/none in "+p+": file does not exist") {
			t.Errorf("%s: ls of a missing path: %q", p, errOut)
		}
	}
}
