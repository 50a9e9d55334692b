package patch

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/imagepatch"
	"github.com/provkit/provkit/manifests/policy"
)

const pin = "3f2a5c7e9b1d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f99"

type fakeInspector struct{ facts aosp.APKFacts }

func (f fakeInspector) InspectAPK(context.Context, string) (*aosp.APKFacts, error) {
	c := f.facts
	return &c, nil
}

func setup(t *testing.T) (dir, pol, key string) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "fw"), 0o755)
	os.WriteFile(filepath.Join(dir, "fw", "product.img"), make([]byte, 8192), 0o644)
	os.WriteFile(filepath.Join(dir, "app.apk"), []byte("apk"), 0o644)
	pol = filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: m}
apps:
  - package: ru.oneme.app
    apk: app.apk
    partition: product
    signers: [{sha256: "`+pin+`"}]
`), 0o644)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(dir, "oem.pem")
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	return dir, pol, key
}

func run(t *testing.T, insp aosp.Inspector, args ...string) (string, error) {
	t.Helper()
	ios, _, out, _ := iostreams.Test()
	cmd := NewCmdPatch(ios, func(ctx context.Context, o *Options) error {
		o.Inspector = insp
		return patchRun(ctx, o)
	})
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestUsage(t *testing.T) {
	dir, pol, key := setup(t)
	fw := filepath.Join(dir, "fw")
	for name, args := range map[string][]string{
		"no policy":     {"--avb-key", key, fw, "--out", filepath.Join(dir, "o")},
		"no key":        {"--policy", pol, fw, "--out", filepath.Join(dir, "o")},
		"no out":        {"--policy", pol, "--avb-key", key, fw},
		"bad algorithm": {"--policy", pol, "--avb-key", key, "--avb-algorithm", "MD5", fw, "--out", filepath.Join(dir, "o")},
		"key mismatch":  {"--policy", pol, "--avb-key", key, "--avb-algorithm", "SHA256_RSA4096", fw, "--out", filepath.Join(dir, "o")},
	} {
		_, err := run(t, fakeInspector{}, args...)
		if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
			t.Errorf("%s: exit %d (%v), want %d", name, code, err, cmdutil.ExitUsage)
		}
	}
}

// TestFailingAPKExits4 pins a signer the APK does not have: exit 4, the JSON report names the
// blocker, nothing is written.
func TestFailingAPKExits4(t *testing.T) {
	dir, pol, key := setup(t)
	out := filepath.Join(dir, "out")
	bad := fakeInspector{aosp.APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 3, Verified: true, Signers: []string{strings.Repeat("ab", 32)}}}}
	stdout, err := run(t, bad, "--policy", pol, "--avb-key", key, "--json", filepath.Join(dir, "fw"), "--out", out)
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitNotCompliant {
		t.Fatalf("exit %d (%v), want %d", code, err, cmdutil.ExitNotCompliant)
	}
	var rep imagepatch.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if len(rep.Blockers) == 0 || rep.KeySHA256 == "" {
		t.Errorf("report %+v", rep)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}

// TestUnsupportedLayoutIsAnError: a raw (non file system) product partition is refused, exit 1.
func TestUnsupportedLayoutIsAnError(t *testing.T) {
	dir, pol, key := setup(t)
	good := fakeInspector{aosp.APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 3, Verified: true, Signers: []string{pin}}}}
	_, err := run(t, good, "--policy", pol, "--avb-key", key, filepath.Join(dir, "fw"), "--out", filepath.Join(dir, "out"))
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitError || !strings.Contains(err.Error(), "not supported by image patch") {
		t.Fatalf("exit %d: %v", code, err)
	}
}

// TestCorruptSparseIsAnError: a product.img with the sparse magic whose first chunk header is
// garbage is refused with exit 1, naming the file and the chunk's offset; nothing is written.
func TestCorruptSparseIsAnError(t *testing.T) {
	dir, pol, key := setup(t)
	img := make([]byte, 8192)
	binary.LittleEndian.PutUint32(img[0:], sparse.Magic)
	binary.LittleEndian.PutUint16(img[4:], 1)
	binary.LittleEndian.PutUint16(img[8:], sparse.HeaderSize)
	binary.LittleEndian.PutUint16(img[10:], sparse.ChunkHeaderSize)
	binary.LittleEndian.PutUint32(img[12:], 4096)
	binary.LittleEndian.PutUint32(img[16:], 1)
	binary.LittleEndian.PutUint32(img[20:], 1)
	binary.LittleEndian.PutUint16(img[28:], 0xBEEF) // chunk 0: unknown type
	binary.LittleEndian.PutUint32(img[32:], 1)
	binary.LittleEndian.PutUint32(img[36:], sparse.ChunkHeaderSize)
	prod := filepath.Join(dir, "fw", "product.img")
	os.WriteFile(prod, img, 0o644)
	good := fakeInspector{aosp.APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 3, Verified: true, Signers: []string{pin}}}}
	out := filepath.Join(dir, "out")
	_, err := run(t, good, "--policy", pol, "--avb-key", key, filepath.Join(dir, "fw"), "--out", out)
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitError {
		t.Fatalf("exit %d (%v), want %d", code, err, cmdutil.ExitError)
	}
	for _, w := range []string{prod, "chunk 0 at offset 28", "0xBEEF"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}

// TestHostileZipIsAnError: an image zip with a "../" entry is refused with exit 1 naming the zip
// and the entry, nothing written beside --out; a directory input with a .zip --out is refused.
func TestHostileZipIsAnError(t *testing.T) {
	dir, pol, key := setup(t)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"android-info.txt", "product.img", "../evil.img"} {
		w, _ := zw.Create(n)
		w.Write(make([]byte, 8192))
	}
	zw.Close()
	in := filepath.Join(dir, "image-acme-1.zip")
	os.WriteFile(in, buf.Bytes(), 0o644)
	good := fakeInspector{aosp.APKFacts{APKFacts: policy.APKFacts{Package: "ru.oneme.app", VersionCode: 3, Verified: true, Signers: []string{pin}}}}
	outDir := filepath.Join(dir, "outdir")
	os.Mkdir(outDir, 0o755)
	_, err := run(t, good, "--policy", pol, "--avb-key", key, in, "--out", filepath.Join(outDir, "patched.zip"))
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitError || !errors.Is(err, imagepatch.ErrBadZip) {
		t.Fatalf("exit %d (%v), want %d", code, err, cmdutil.ExitError)
	}
	for _, w := range []string{in, "../evil.img"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
	_, err = run(t, good, "--policy", pol, "--avb-key", key, filepath.Join(dir, "fw"), "--out", filepath.Join(outDir, "x.zip"))
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitError || !errors.Is(err, imagepatch.ErrUnsupported) {
		t.Fatalf("directory to zip: exit %d (%v)", code, err)
	}
}
