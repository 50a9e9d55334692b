package apk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// toolAPK builds APKs with the real Android tools: aapt (a manifest compiled against a tiny
// framework resource package that defines the android: attributes), aapt add, zipalign, and
// apksigner with keys made by openssl.
type toolAPK struct {
	t   *testing.T
	dir string
}

func newToolAPK(t *testing.T) *toolAPK {
	t.Helper()
	testtool.Require(t, "aapt", "zipalign", "apksigner", "openssl")
	b := &toolAPK{t: t, dir: t.TempDir()}
	b.write("fw/AndroidManifest.xml", `<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="android"/>`)
	b.write("fw/res/values/attrs.xml", `<resources>
  <attr name="name" format="string"/>
  <attr name="minSdkVersion" format="integer|string"/>
  <attr name="versionCode" format="integer"/>
  <attr name="versionName" format="string"/>
  <attr name="targetSdkVersion" format="integer|string"/>
  <public type="attr" name="name" id="0x01010003"/>
  <public type="attr" name="minSdkVersion" id="0x0101020c"/>
  <public type="attr" name="versionCode" id="0x0101021b"/>
  <public type="attr" name="versionName" id="0x0101021c"/>
  <public type="attr" name="targetSdkVersion" id="0x01010270"/>
</resources>`)
	b.run("aapt", "package", "-f", "-x", "-M", b.path("fw/AndroidManifest.xml"), "-S", b.path("fw/res"), "-F", b.path("fw.apk"))
	return b
}

func (b *toolAPK) path(p string) string { return filepath.Join(b.dir, p) }

func (b *toolAPK) write(p, content string) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Dir(b.path(p)), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(b.path(p), []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *toolAPK) run(name string, args ...string) string {
	b.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// key makes an RSA key (PKCS#8 DER) and a self-signed certificate (PEM) named name.
func (b *toolAPK) key(name, cn string) {
	b.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name+".pem", "-out", name+".crt", "-days", "3650", "-subj", cn)
	b.run("openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", name+".pem", "-out", name+".pk8")
}

// unsigned builds an aligned unsigned APK with a manifest (minSdk), a random stored asset and a
// native library, and returns its name.
func (b *toolAPK) unsigned(name string, minSDK int) string {
	b.write(name+"/AndroidManifest.xml", `<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="dev.provkit.tools" android:versionCode="42" android:versionName="4.2">
  <uses-sdk android:minSdkVersion="`+itoa(int64(minSDK))+`" android:targetSdkVersion="33"/>
  <uses-permission android:name="android.permission.INTERNET"/>
</manifest>`)
	if err := os.MkdirAll(b.path(name+"/assets"), 0o755); err != nil {
		b.t.Fatal(err)
	}
	os.WriteFile(b.path(name+"/assets/blob.bin"), pseudoRandom(2<<20, 11), 0o644)
	os.MkdirAll(b.path(name+"/lib/arm64-v8a"), 0o755)
	os.WriteFile(b.path(name+"/lib/arm64-v8a/libprovkit.so"), bytes.Repeat([]byte("\x7fELF"), 1000), 0o644)
	b.run("aapt", "package", "-f", "-M", name+"/AndroidManifest.xml", "-I", "fw.apk", "-F", name+".unaligned.apk")
	cmd := exec.Command("aapt", "add", "-0", "", "../"+name+".unaligned.apk", "assets/blob.bin", "lib/arm64-v8a/libprovkit.so")
	cmd.Dir = b.path(name)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("aapt add: %v\n%s", err, out)
	}
	b.run("zipalign", "-f", "4", name+".unaligned.apk", name+".apk")
	return name + ".apk"
}

var apksignerDigest = regexp.MustCompile(`(?m)^Signer #1 certificate SHA-256 digest: ([0-9a-f]{64})$`)
var apksignerDN = regexp.MustCompile(`(?m)^Signer #1 certificate DN: (.*)$`)

// apksignerVerify runs "apksigner verify --print-certs" and returns the verdict and Signer #1's
// SHA-256 and DN.
func apksignerVerify(t *testing.T, dir string, args ...string) (ok bool, sha, dn, out string) {
	cmd := exec.Command("apksigner", append([]string{"verify", "--print-certs"}, args...)...)
	cmd.Dir = dir
	o, err := cmd.CombinedOutput()
	out = string(o)
	if m := apksignerDigest.FindStringSubmatch(out); m != nil {
		sha = m[1]
	}
	if m := apksignerDN.FindStringSubmatch(out); m != nil {
		dn = m[1]
	}
	return err == nil, sha, dn, out
}

func TestAgainstApksignerAllSchemes(t *testing.T) {
	b := newToolAPK(t)
	b.key("k", "/CN=provkit tools/OU=QA, Lab/O=provkit/C=RU")
	in := b.unsigned("app", 21)
	b.run("apksigner", "sign", "--key", "k.pk8", "--cert", "k.crt", "--v4-signing-enabled", "true", "--out", "signed.apk", in)

	res := mustVerify(t, b.path("signed.apk"), Options{})
	if !res.Verified || !res.Schemes.V1 || !res.Schemes.V2 || !res.Schemes.V3 || !res.Schemes.V4 {
		t.Fatalf("want v1+v2+v3+v4 verified: %+v", res)
	}
	ok, sha, dn, out := apksignerVerify(t, b.dir, "signed.apk")
	if !ok || sha == "" {
		t.Fatalf("apksigner does not verify its own APK:\n%s", out)
	}
	if res.Signers[0].SHA256 != sha || res.Signers[0].Subject != dn {
		t.Fatalf("signer #1: provkit %s %q, apksigner %s %q", res.Signers[0].SHA256, res.Signers[0].Subject, sha, dn)
	}
	_, _, _, verbose := apksignerVerify(t, b.dir, "-v", "signed.apk")
	if want := "Signer #1 public key SHA-256 digest: " + res.Signers[0].PublicKeySHA256; !strings.Contains(verbose, want) {
		t.Fatalf("apksigner -v does not print %q:\n%s", want, verbose)
	}
	if res.Package != "dev.provkit.tools" || res.VersionCode != 42 || res.MinSDK != 21 || res.TargetSDK != 33 {
		t.Fatalf("manifest facts: %+v", res)
	}
	info, err := InspectFile(context.Background(), b.path("signed.apk"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(info.NativeABIs, ",") != "arm64-v8a" || strings.Join(info.RequestedPermissions, ",") != "android.permission.INTERNET" || info.Signers[0].SHA256 != sha {
		t.Fatalf("inspect: %+v", info)
	}

	// v1 only, and v2 only: each verdict as apksigner's for the same SDK range.
	b.run("apksigner", "sign", "--key", "k.pk8", "--cert", "k.crt", "--v2-signing-enabled", "false", "--v3-signing-enabled", "false", "--out", "v1.apk", in)
	b.run("apksigner", "sign", "--key", "k.pk8", "--cert", "k.crt", "--v1-signing-enabled", "false", "--v3-signing-enabled", "false", "--min-sdk-version", "24", "--out", "v2.apk", in)
	for _, c := range []struct {
		file   string
		minSDK int
	}{{"v1.apk", 0}, {"v2.apk", 0}, {"v2.apk", 24}, {"v1.apk", 30}} {
		var args []string
		if c.minSDK > 0 {
			args = append(args, "--min-sdk-version", itoa(int64(c.minSDK)))
		}
		aok, asha, _, aout := apksignerVerify(t, b.dir, append(args, c.file)...)
		res := mustVerify(t, b.path(c.file), Options{MinSDK: c.minSDK})
		if res.Verified != aok {
			t.Errorf("%s minSdk %d: provkit verified=%v %v, apksigner %v:\n%s", c.file, c.minSDK, res.Verified, res.Errors, aok, aout)
		}
		if aok && res.Signers[0].SHA256 != asha {
			t.Errorf("%s: signer %s, apksigner %s", c.file, res.Signers[0].SHA256, asha)
		}
	}
}

func TestAgainstApksignerRotation(t *testing.T) {
	b := newToolAPK(t)
	b.key("old", "/CN=old key")
	b.key("new", "/CN=new key")
	in := b.unsigned("app", 24)
	b.run("apksigner", "rotate", "--out", "lineage", "--old-signer", "--key", "old.pk8", "--cert", "old.crt", "--new-signer", "--key", "new.pk8", "--cert", "new.crt")
	b.run("apksigner", "sign", "--key", "old.pk8", "--cert", "old.crt", "--next-signer", "--key", "new.pk8", "--cert", "new.crt", "--lineage", "lineage", "--out", "rotated.apk", in)
	res := mustVerify(t, b.path("rotated.apk"), Options{})
	ok, sha, _, out := apksignerVerify(t, b.dir, "rotated.apk")
	if !ok || !res.Verified {
		t.Fatalf("provkit %v %v, apksigner %v:\n%s", res.Verified, res.Errors, ok, out)
	}
	if res.Signers[0].SHA256 != sha || len(res.Lineage) != 2 || res.Lineage[1].SHA256 != sha {
		t.Fatalf("signer #1 %s lineage %+v, apksigner %s", res.Signers[0].SHA256, res.Lineage, sha)
	}
}

// TestAgainstApksignerTampered: modified APKs are rejected by both verifiers.
func TestAgainstApksignerTampered(t *testing.T) {
	b := newToolAPK(t)
	b.key("k", "/CN=tamper")
	in := b.unsigned("app", 21)
	b.run("apksigner", "sign", "--key", "k.pk8", "--cert", "k.crt", "--out", "signed.apk", in)
	good, err := os.ReadFile(b.path("signed.apk"))
	if err != nil {
		t.Fatal(err)
	}
	z, err := openZip(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := findSigningBlock(bytes.NewReader(good), z)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := z.checkLocalHeaders(sb.offset); err != nil {
		t.Fatal(err)
	}
	flip := func(off int64) []byte {
		c := append([]byte(nil), good...)
		c[off] ^= 0x40
		return c
	}
	variants := map[string][]byte{
		"asset byte":         flip(z.entry("assets/blob.bin").dataOffset + 12345),
		"native lib byte":    flip(z.entry("lib/arm64-v8a/libprovkit.so").dataOffset + 7),
		"central directory":  flip(z.cdOffset + 60),
		"signing block":      flip(sb.offset + sb.size/2),
		"trailing byte":      append(append([]byte(nil), good...), 0),
		"truncated":          good[:len(good)-10],
		"manifest.mf byte":   flip(z.entry("META-INF/MANIFEST.MF").dataOffset + 20),
		"signing block size": flip(sb.offset + 1),
	}
	for name, data := range variants {
		p := b.path("variant.apk")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res := mustVerify(t, p, Options{})
		aok, _, _, aout := apksignerVerify(t, b.dir, "variant.apk")
		if res.Verified || aok {
			t.Errorf("%s: provkit verified=%v, apksigner verified=%v (both must reject)\n%s", name, res.Verified, aok, aout)
		}
	}
}

// TestAgainstApksignerVerity: APKs signed with the verity-based content digest
// (VERITY_CHUNKED_SHA256, apksigner --verity-enabled) verify with it for Android 9+.
func TestAgainstApksignerVerity(t *testing.T) {
	b := newToolAPK(t)
	b.key("k", "/CN=verity")
	in := b.unsigned("app", 21)
	b.run("apksigner", "sign", "--key", "k.pk8", "--cert", "k.crt", "--verity-enabled", "true", "--out", "verity.apk", in)
	for _, minSDK := range []int{0, 28} {
		res := mustVerify(t, b.path("verity.apk"), Options{MinSDK: minSDK})
		ok, sha, _, out := apksignerVerify(t, b.dir, "verity.apk")
		if !res.Verified || !ok || res.Signers[0].SHA256 != sha {
			t.Fatalf("min SDK %d: provkit %v %v, apksigner %v:\n%s", minSDK, res.Verified, res.Errors, ok, out)
		}
	}
	// The verity digest is really checked: corrupt an entry byte and look for the v3 error.
	data, _ := os.ReadFile(b.path("verity.apk"))
	z, err := openZip(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := findSigningBlock(bytes.NewReader(data), z)
	z.checkLocalHeaders(sb.offset)
	data[z.entry("assets/blob.bin").dataOffset+99] ^= 1
	res, err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), Options{MinSDK: 28})
	if err != nil || res.Verified || !res.HasError("V3_SIG_APK_DIGEST_DID_NOT_VERIFY") {
		t.Fatalf("corrupted verity APK: %v %+v", err, res)
	}
	verity := false
	for _, e := range res.Errors {
		verity = verity || strings.Contains(e.Message, "VERITY_CHUNKED_SHA256")
	}
	if !verity {
		t.Fatalf("the verity digest was not checked: %v", res.Errors)
	}
}
