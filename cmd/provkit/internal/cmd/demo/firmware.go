package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	apkpatch "github.com/provkit/provkit/cmd/provkit/internal/cmd/patch"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/internal/demoapk"
	"github.com/provkit/provkit/internal/unixmode"
	"github.com/provkit/provkit/manifests/audit"
	"github.com/provkit/provkit/manifests/imagepatch"
	"github.com/provkit/provkit/manifests/policy"
)

// The demo's firmware is what an ODM hands over, reduced: boot.img, a product partition (EROFS,
// with its own file_contexts, a preinstalled app and a dm-verity hashtree footer) and vbmeta.img
// signed with the ODM's AVB key. It lacks the mandated app, so 'image audit' fails; 'image patch'
// puts the app in and re-signs vbmeta with the OEM's key (avb-oem.pem), and the patched firmware
// is what the phones are flashed with.

const (
	odmDir     = "odm-firmware"
	patchedDir = "patched-firmware"
	oemKeyFile = "avb-oem.pem"
	// productSize is the product partition's size, footer included.
	productSize = 4 << 20
)

// demoContexts labels the product partition as an AOSP product_file_contexts does.
const demoContexts = `/product(/.*)?                         u:object_r:system_file:s0
/product/app(/.*)?                     u:object_r:system_app_file:s0
/product/priv-app(/.*)?                u:object_r:system_app_file:s0
/product/etc/permissions(/.*)?         u:object_r:system_perm_file:s0
/product/etc/selinux(/.*)?             u:object_r:sepolicy_file:s0
`

// odmFirmware writes the ODM's firmware into dir: android-info.txt, boot.img, product.img and
// vbmeta.img (signed with odm).
func odmFirmware(ctx context.Context, dir string, odm *rsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	boot := make([]byte, 512<<10)
	if _, err := rand.Read(boot); err != nil {
		return err
	}
	gallery, err := demoapk.NewKey("ODM platform key")
	if err != nil {
		return err
	}
	galleryAPK, err := demoapk.Build(demoapk.Spec{Package: "com.odm.gallery", VersionCode: 3, VersionName: "3.0"}, gallery)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"android-info.txt": []byte("require version-bootloader=*\n"), "boot.img": boot} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	label := func(l string) map[string][]byte { return map[string][]byte{"security.selinux": append([]byte(l), 0)} }
	dirNode := func(p, l string) erofs.Node {
		return erofs.Node{Path: p, Mode: unixmode.IFDIR | 0o755, Mtime: mtime, Xattrs: label(l)}
	}
	fileNode := func(p, l string, b []byte) erofs.Node {
		return erofs.Node{Path: p, Mode: unixmode.IFREG | 0o644, Mtime: mtime, Xattrs: label(l), Size: int64(len(b)), Data: bytes.NewReader(b)}
	}
	const sys, app, perm, sep = "u:object_r:system_file:s0", "u:object_r:system_app_file:s0", "u:object_r:system_perm_file:s0", "u:object_r:sepolicy_file:s0"
	nodes := []erofs.Node{
		dirNode(".", sys),
		dirNode("app", app),
		dirNode("app/Gallery", app),
		fileNode("app/Gallery/Gallery.apk", app, galleryAPK),
		fileNode("build.prop", sys, []byte("ro.product.product.brand=acme\nro.product.product.name=acme_phone\n")),
		dirNode("etc", sys),
		dirNode("etc/permissions", perm),
		fileNode("etc/permissions/com.odm.gallery.xml", perm, []byte("<permissions>\n    <privapp-permissions package=\"com.odm.gallery\"/>\n</permissions>\n")),
		dirNode("etc/selinux", sep),
		fileNode("etc/selinux/product_file_contexts", sep, []byte(demoContexts)),
	}
	img := filepath.Join(dir, "product.img")
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := erofs.Write(ctx, f, nodes, erofs.WriteOptions{VolumeName: "product", BuildTime: mtime})
	if err != nil {
		return fmt.Errorf("writing %s: %w", img, err)
	}
	ht, _, err := avb.AddHashtreeFooter(ctx, f, n, avb.FooterOptions{PartitionName: "product", PartitionSize: productSize, Salt: []byte("provkit demo salt")}, avb.Signer{})
	if err != nil {
		return fmt.Errorf("adding the hashtree footer to %s: %w", img, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	s, err := avb.NewSigner(odm, "")
	if err != nil {
		return err
	}
	vb, err := avb.BuildVBMeta(avb.VBMetaOptions{Descriptors: []avb.Descriptor{ht, &avb.Property{Key: "com.acme.odm.build", Value: []byte("2026.01")}}, RollbackIndex: 1}, s)
	if err != nil {
		return err
	}
	vb = append(vb, make([]byte, 4096-len(vb)%4096)...)
	return os.WriteFile(filepath.Join(dir, "vbmeta.img"), vb, 0o644)
}

// writeKeyPEM writes k as a PKCS#1 PEM file, as avbtool's --key reads it.
func writeKeyPEM(path string, k *rsa.PrivateKey) error {
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return os.WriteFile(path, b, 0o600)
}

// auditFirmware runs 'provkit image audit' on a firmware directory.
func auditFirmware(ctx context.Context, p *policy.Policy, dir string) (*audit.Report, error) {
	im, err := image.Open(ctx, dir, nil)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	parts := map[string]fs.FS{}
	for _, pt := range im.Partitions {
		if fsys, err := pt.FS(); err == nil {
			parts[pt.Name] = fsys
		}
	}
	return audit.Run(ctx, p, parts, audit.Options{})
}

// failures lists the rules an audit failed, "app: rule" each.
func failures(r *audit.Report) string {
	var out []string
	for _, a := range r.Apps {
		for _, c := range a.Checks {
			if !c.Pass {
				out = append(out, a.Package+": "+c.Rule)
			}
		}
	}
	return strings.Join(out, ", ")
}

// patchStep builds the ODM's firmware, audits it (not compliant), patches it with 'image patch'
// into patched-firmware/ signed with the OEM's AVB key, and audits the result (compliant). It
// returns the patched directory, which the phones are flashed with.
func patchStep(ctx context.Context, dir string, p *policy.Policy, say func(string, ...any)) (string, error) {
	odmKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	oemKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	if err := writeKeyPEM(filepath.Join(dir, oemKeyFile), oemKey); err != nil {
		return "", fmt.Errorf("writing the OEM's AVB key: %w", err)
	}
	odm := filepath.Join(dir, odmDir)
	if err := odmFirmware(ctx, odm, odmKey); err != nil {
		return "", err
	}
	before, err := auditFirmware(ctx, p, odm)
	if err != nil {
		return "", fmt.Errorf("auditing %s: %w", odm, err)
	}
	if before.Compliant {
		return "", fmt.Errorf("auditing %s: the ODM's firmware passed, but it was built without the app", odm)
	}
	say("the ODM's firmware %s (boot, product EROFS with a hashtree footer, vbmeta) fails 'provkit image audit': %s", odm, failures(before))
	s, err := avb.NewSigner(oemKey, "")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, patchedDir)
	rep, err := imagepatch.Run(ctx, imagepatch.Options{Policy: p, Input: odm, Out: out, Signer: s, Inspector: apkpatch.NewInspector()})
	if err != nil {
		return "", fmt.Errorf("patching %s: %w", odm, err)
	}
	for _, pr := range rep.Partitions {
		say("  %s (%s): %s", pr.Name, pr.File, pr.Why)
		for _, f := range pr.Files {
			say("    + %s (%d bytes, %s)", f.Path, f.Size, f.Label)
		}
	}
	after, err := auditFirmware(ctx, p, out)
	if err != nil {
		return "", fmt.Errorf("auditing %s: %w", out, err)
	}
	if !after.Compliant {
		return "", fmt.Errorf("auditing %s: the patched firmware still fails: %s", out, failures(after))
	}
	say("'provkit image patch' wrote %s, re-signed with the OEM's AVB key %s (SHA-256 %.16s...): 'provkit image audit' passes.", out, filepath.Join(dir, oemKeyFile), rep.KeySHA256)
	return out, nil
}
