package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/audit"
	"github.com/provkit/provkit/manifests/policy"
)

// inspector is what `provkit patch` uses (cmd/provkit/internal/cmd/patch), rebuilt here because a
// manifests test cannot import the command layer.
type inspector struct{}

func (inspector) InspectAPK(ctx context.Context, path string) (*aosp.APKFacts, error) {
	res, err := apk.VerifyFile(ctx, path, apk.Options{})
	if err != nil {
		return nil, err
	}
	info, err := apk.InspectFile(ctx, path)
	if err != nil {
		return nil, err
	}
	f := &aosp.APKFacts{APKFacts: policy.APKFactsOf(res), RequestedPermissions: info.RequestedPermissions}
	if f.Package == "" {
		f.Package, f.VersionCode = info.Package, info.VersionCode
	}
	return f, nil
}

const productContexts = `/product(/.*)?                    u:object_r:system_file:s0
/product/etc/permissions(/.*)?    u:object_r:system_perm_file:s0
/product/etc/selinux(/.*)?        u:object_r:sepolicy_file:s0
/product/app(/.*)?                u:object_r:system_app_file:s0
`

type fixture struct {
	dir, fw, policyPath, apkPath string
	ref                          string
	key                          *demoapk.Key
	apkAsset                     int // bytes of random (incompressible) asset in the APK
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newFirmware builds, with the real tools, a directory holding product.img (EROFS made by
// mkfs.erofs with labels from file_contexts, hashtree footer by avbtool) and vbmeta.img (by
// avbtool, signed with the 4096-bit test key). chained puts product behind a chain descriptor,
// its footer vbmeta signed with the 4096-bit test key too. The tests re-sign with the 2048-bit
// test key, standing in for the OEM's. The APK to add carries bigAPK bytes of incompressible
// asset (0: a few bytes), so that it does not fit the 8 MiB partition when bigAPK is large.
func newFirmware(t *testing.T, chained bool, bigAPK int) *fixture {
	return newFirmwareMkfs(t, chained, bigAPK, "-zlz4hc")
}

// newFirmwareMkfs is newFirmware with product.img made by mkfs.erofs with mkfsArgs instead of
// -zlz4hc.
func newFirmwareMkfs(t *testing.T, chained bool, bigAPK int, mkfsArgs ...string) *fixture {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	fx := &fixture{dir: t.TempDir(), ref: testtool.ReferenceTools(t), apkAsset: bigAPK}
	src := filepath.Join(fx.dir, "src")
	write(t, filepath.Join(src, "etc/selinux/product_file_contexts"), []byte(productContexts))
	write(t, filepath.Join(src, "etc/permissions/existing.xml"), []byte("<permissions/>\n"))
	write(t, filepath.Join(src, "app/Other/Other.apk"), bytes.Repeat([]byte("other"), 3000))
	write(t, filepath.Join(src, "build.prop"), []byte("ro.product.product.name=acme\n"))
	// 4 MiB that lz4hc shrinks to a few blocks: written uncompressed it would take 4 MiB
	write(t, filepath.Join(src, "app/Other/big.txt"), bytes.Repeat([]byte("compressible "), 4<<20/13))
	if err := os.Symlink("Other.apk", filepath.Join(src, "app/Other/link")); err != nil {
		t.Fatal(err)
	}
	// mkfs.erofs 1.5 has no --mount-point: its contexts are rooted at "/"
	rooted := strings.ReplaceAll(strings.ReplaceAll(productContexts, "/product(/.*)?", "(/.*)?"), "/product/", "/")
	fc := filepath.Join(fx.dir, "fc")
	write(t, fc, []byte(rooted))
	fx.fw = filepath.Join(fx.dir, "fw")
	os.MkdirAll(fx.fw, 0o755)
	img := filepath.Join(fx.fw, "product.img")
	args := append(append([]string{"--file-contexts=" + fc}, mkfsArgs...), "-T1230768000", img, src)
	if out, err := exec.Command("mkfs.erofs", args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	footer := []string{"add_hashtree_footer", "--do_not_generate_fec", "--image", img, "--partition_name", "product",
		"--partition_size", "8388608", "--hash_algorithm", "sha256", "--salt", "00112233"}
	vbmeta := []string{"make_vbmeta_image", "--output", filepath.Join(fx.fw, "vbmeta.img"), "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"),
		"--algorithm", "SHA256_RSA4096", "--rollback_index", "5", "--prop", "com.example.kept:yes", "--padding_size", "4096"}
	if chained {
		footer = append(footer, "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"), "--algorithm", "SHA512_RSA4096", "--rollback_index", "3")
		pub := filepath.Join(fx.dir, "pub4096")
		testtool.Avbtool(t, fx.ref, "extract_public_key", "--key", filepath.Join(fx.ref, "testkey_rsa4096.pem"), "--output", pub)
		vbmeta = append(vbmeta, "--chain_partition", "product:1:"+pub)
	} else {
		vbmeta = append(vbmeta, "--include_descriptors_from_image", img)
	}
	testtool.Avbtool(t, fx.ref, footer...)
	testtool.Avbtool(t, fx.ref, vbmeta...)
	fx.addPolicy(t)
	return fx
}

// addPolicy writes the messenger APK and a policy that puts it on product.
func (fx *fixture) addPolicy(t *testing.T) {
	key, err := demoapk.NewKey("Messenger release")
	if err != nil {
		t.Fatal(err)
	}
	fx.key = key
	var asset []byte
	if fx.apkAsset > 0 {
		asset = make([]byte, fx.apkAsset)
		rand.New(rand.NewSource(1)).Read(asset)
	}
	apkBytes, err := demoapk.Build(demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}, Asset: asset}, key)
	if err != nil {
		t.Fatal(err)
	}
	fx.apkPath = filepath.Join(fx.dir, "messenger.apk")
	write(t, fx.apkPath, apkBytes)
	fx.policyPath = filepath.Join(fx.dir, "policy.yaml")
	write(t, fx.policyPath, []byte(fmt.Sprintf(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    apk: messenger.apk
    signers: [{sha256: %q}]
    partition: product
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
`, key.CertSHA256())))
}

func auditDir(t *testing.T, pol *policy.Policy, dir string) *audit.Report {
	t.Helper()
	im, err := image.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	parts := map[string]fs.FS{}
	for _, p := range im.Partitions {
		if fsys, err := p.FS(); err == nil {
			parts[p.Name] = fsys
		}
	}
	rep, err := audit.Run(context.Background(), pol, parts, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func signer(t *testing.T, ref, name string) avb.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ref, name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := avb.ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := avb.NewSigner(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func digestDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		s, _, err := hashFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = s
	}
	return out
}

// TestPatchMakesFirmwareCompliant: the firmware fails the audit; after image patch it passes, the
// input is untouched, avbtool verify_image accepts the output signed with the new key, every old
// file is unchanged, the new files carry the labels file_contexts gives them, and fsck.erofs and
// its --extract agree.
func TestPatchMakesFirmwareCompliant(t *testing.T) {
	for _, chained := range []bool{false, true} {
		t.Run(fmt.Sprintf("chained=%v", chained), func(t *testing.T) {
			fx := newFirmware(t, chained, 0)
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			if rep := auditDir(t, pol, fx.fw); rep.Compliant {
				t.Fatal("the input firmware already passes the audit: the test proves nothing")
			}
			before := digestDir(t, fx.fw)
			out := filepath.Join(fx.dir, "out")
			oem := signer(t, fx.ref, "testkey_rsa2048.pem")

			dry, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("dry run wrote %s", out)
			}
			if len(dry.Partitions) != 2 || len(dry.Partitions[0].Files) != 3 {
				t.Fatalf("dry run reports %+v", dry.Partitions)
			}

			rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}})
			if err != nil {
				t.Fatal(err)
			}
			if after := digestDir(t, fx.fw); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("the input was modified")
			}
			if a := auditDir(t, pol, out); !a.Compliant {
				t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
			} else if a.Apps[0].Path != "/product/app/RuOnemeApp/RuOnemeApp.apk" {
				t.Errorf("audit evidence points at %q", a.Apps[0].Path)
			}
			args := []string{"verify_image", "--image", filepath.Join(out, "vbmeta.img")}
			if chained {
				args = append(args, "--follow_chain_partitions")
			}
			v := testtool.Avbtool(t, fx.ref, args...)
			if !strings.Contains(v, "Successfully verified sha256 hashtree") {
				t.Errorf("verify_image did not check the product hashtree:\n%s", v)
			}
			info := testtool.Avbtool(t, fx.ref, "info_image", "--image", filepath.Join(out, "vbmeta.img"))
			for _, w := range []string{"Rollback Index:           5", "com.example.kept -> 'yes'", "Algorithm:                SHA256_RSA2048"} {
				if !strings.Contains(info, w) {
					t.Errorf("info_image of the new vbmeta lacks %q:\n%s", w, info)
				}
			}
			if rep.KeySHA256 == "" || len(rep.Partitions) != 2 {
				t.Errorf("report: %+v", rep)
			}

			// the file system, judged by fsck.erofs and read back
			img := filepath.Join(out, "product.img")
			ft := testtool.Avbtool(t, fx.ref, "info_image", "--image", img)
			if !strings.Contains(ft, "Image size:               8388608 bytes") {
				t.Errorf("partition size not kept:\n%s", ft)
			}
			x := filepath.Join(fx.dir, "x")
			if o, err := exec.Command("fsck.erofs", "--extract="+x, img).CombinedOutput(); err != nil {
				t.Fatalf("fsck.erofs: %v\n%s", err, o)
			}
			apkWant, _ := os.ReadFile(fx.apkPath)
			if got, _ := os.ReadFile(filepath.Join(x, "app/RuOnemeApp/RuOnemeApp.apk")); !bytes.Equal(got, apkWant) {
				t.Error("fsck.erofs --extract: the APK differs")
			}
			kernelReads(t, img, "erofs", fx.apkPath, map[string]string{
				"app/RuOnemeApp/RuOnemeApp.apk":                        "u:object_r:system_app_file:s0",
				"etc/sysconfig/preinstalled-packages-ru.oneme.app.xml": "u:object_r:system_file:s0",
				"app/Other/Other.apk":                                  "u:object_r:system_app_file:s0",
			}, nil)
			b, _ := os.ReadFile(img)
			im, err := avb.Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			fsSize := int64(im.Footer.OriginalImageSize)
			nf, err := erofs.Open(bytes.NewReader(b[:fsSize]), fsSize)
			if err != nil {
				t.Fatal(err)
			}
			// The lz4hc file system keeps its size: compressed files are copied compressed
			// (big.txt alone would add 4 MiB written out), so it grows by the new files and
			// some metadata (extended inodes, inline labels, full indexes) only.
			ob, _ := os.ReadFile(filepath.Join(fx.fw, "product.img"))
			oim, err := avb.Open(bytes.NewReader(ob), int64(len(ob)))
			if err != nil {
				t.Fatal(err)
			}
			oldFS := int64(oim.Footer.OriginalImageSize)
			added := int64(0)
			for _, f := range rep.Partitions[0].Files {
				added += (f.Size + 4095) / 4096 * 4096
			}
			if oldFS > 1<<20 || fsSize > oldFS+added+64<<10 {
				t.Errorf("file system of %d bytes after, %d before, %d bytes of files added", fsSize, oldFS, added)
			}
			if why := rep.Partitions[0].Why; strings.Contains(why, "uncompressed") {
				t.Errorf("report says files fell back: %q", why)
			}
			for p, want := range map[string]string{
				"app/RuOnemeApp":                "u:object_r:system_app_file:s0",
				"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0",
				"etc/permissions/existing.xml":  "u:object_r:system_perm_file:s0",
				"etc/default-permissions/default-permissions-ru.oneme.app.xml": "u:object_r:system_file:s0",
				"etc/sysconfig/preinstalled-packages-ru.oneme.app.xml":         "u:object_r:system_file:s0",
				"app/Other/Other.apk": "u:object_r:system_app_file:s0",
			} {
				fi, err := nf.Lstat(p)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				in := fi.Sys().(*erofs.Inode)
				if got := in.SELinuxLabel(); got != want {
					t.Errorf("%s: label %q, want %q", p, got, want)
				}
				if in.UID() != 0 || in.GID() != 0 {
					t.Errorf("%s: owner %d:%d", p, in.UID(), in.GID())
				}
			}
			if fi, _ := nf.Lstat("app/RuOnemeApp/RuOnemeApp.apk"); fi == nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("APK mode: %v", fi)
			}
			if l, err := nf.ReadLink("app/Other/link"); err != nil || l != "Other.apk" {
				t.Errorf("symlink: %q %v", l, err)
			}

			// the output exists now: a second run refuses to overwrite it
			if _, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: oem, Inspector: inspector{}}); err == nil {
				t.Error("second run overwrote the output")
			}
		})
	}
}

func TestPatchRefusesFailingAPK(t *testing.T) {
	fx := newFirmware(t, false, 0)
	other, err := demoapk.NewKey("someone else")
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := demoapk.Build(demoapk.Spec{Package: "ru.oneme.app", VersionCode: 25}, other)
	write(t, fx.apkPath, bad)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), Options{Policy: pol, Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}})
	if !errors.Is(err, ErrBlocked) || rep == nil || len(rep.Blockers) == 0 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Error("output written for a failing APK")
	}
	ents, _ := os.ReadDir(fx.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
}

func TestFallbackNote(t *testing.T) {
	if got := fallbackNote(erofs.WriteStats{Copied: 3}, "system", "system/"); got != "" {
		t.Errorf("no fallback: %q", got)
	}
	st := erofs.WriteStats{Fallbacks: []erofs.Fallback{{Path: "system/app/A.apk", Reason: "interlaced uncompressed pclusters"}, {Path: "system/b", Reason: "x"}}}
	want := "; 2 compressed or deduplicated file(s) written plain and uncompressed, e.g. /system/app/A.apk (interlaced uncompressed pclusters)"
	if got := fallbackNote(st, "system", "system/"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// loadPolicy loads the fixture's policy.
func (fx *fixture) loadPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// options are the options the tests patch the fixture with: its firmware and policy, the
// 2048-bit test key standing in for the OEM's, into out.
func (fx *fixture) options(t *testing.T, out string) Options {
	t.Helper()
	return Options{Policy: fx.loadPolicy(t), Input: fx.fw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}}
}

// TestPatchKeepsChunkedSize: a product image made with mkfs.erofs --chunksize=4096 (what
// BOARD_EROFS_SHARE_DUP_BLOCKS builds make) shares blocks between identical chunks: big.txt's 4
// MiB repeat a 13-byte phrase, so its 1024 chunks use 13 distinct blocks. After image patch the
// file system keeps that sharing: it grows by the added files (rounded to blocks) plus 16 blocks
// of metadata (extended inodes, inline labels) at most, not by the 4 MiB big.txt would take
// written flat; the kernel and fsck.erofs read the same bytes, and the audit passes.
func TestPatchKeepsChunkedSize(t *testing.T) {
	fx := newFirmwareMkfs(t, false, 0, "--chunksize=4096")
	oldFS := erofsSize(t, filepath.Join(fx.fw, "product.img"))
	out := filepath.Join(fx.dir, "out")
	rep, err := Run(context.Background(), fx.options(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if a := auditDir(t, fx.loadPolicy(t), out); !a.Compliant {
		t.Fatalf("the patched firmware fails the audit: %+v", a.Apps)
	}
	img := filepath.Join(out, "product.img")
	newFS := erofsSize(t, img)
	added := int64(0)
	for _, f := range rep.Partitions[0].Files {
		added += (f.Size + 4095) / 4096 * 4096
	}
	t.Logf("file system: %d bytes before, %d after, %d bytes of files added", oldFS, newFS, added)
	if oldFS > 1<<20 {
		t.Fatalf("the chunked input is %d bytes: no sharing, the test proves nothing", oldFS)
	}
	if newFS > oldFS+added+16*4096 {
		t.Errorf("file system of %d bytes after, %d before, %d bytes of files added: chunk sharing lost", newFS, oldFS, added)
	}
	if why := rep.Partitions[0].Why; strings.Contains(why, "uncompressed") {
		t.Errorf("report says files fell back: %q", why)
	}
	x := filepath.Join(fx.dir, "x")
	if o, err := exec.Command("fsck.erofs", "--extract="+x, img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, o)
	}
	want := bytes.Repeat([]byte("compressible "), 4<<20/13)
	if got, _ := os.ReadFile(filepath.Join(x, "app/Other/big.txt")); !bytes.Equal(got, want) {
		t.Error("fsck.erofs --extract: big.txt differs")
	}
	kernelReads(t, img, "erofs", fx.apkPath, map[string]string{
		"app/RuOnemeApp/RuOnemeApp.apk": "u:object_r:system_app_file:s0",
		"app/Other/big.txt":             "u:object_r:system_app_file:s0",
	}, nil)
	b, _ := os.ReadFile(img)
	im, err := avb.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	nf, err := erofs.Open(bytes.NewReader(b[:im.Footer.OriginalImageSize]), int64(im.Footer.OriginalImageSize))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := nf.Lstat("app/Other/big.txt"); err != nil || fi.Sys().(*erofs.Inode).Layout() != erofs.LayoutChunkBased {
		t.Errorf("big.txt: %v, want chunk-based", err)
	}
}

// erofsSize returns the size of the file system of the AVB-footed EROFS partition at p.
func erofsSize(t *testing.T, p string) int64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	im, err := avb.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return int64(im.Footer.OriginalImageSize)
}
