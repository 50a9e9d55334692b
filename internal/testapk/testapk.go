package testapk

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"html"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// Signer is a signing key and its self-signed certificate.
type Signer struct {
	Key  *rsa.PrivateKey
	Cert []byte // DER
}

// CertSHA256 is the hex SHA-256 of the certificate, the digest policies pin.
func (s *Signer) CertSHA256() string {
	d := sha256.Sum256(s.Cert)
	return hex.EncodeToString(d[:])
}

// NewSigner generates a 2048-bit RSA signer named cn.
func NewSigner(t testing.TB, cn string) *Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{Key: k, Cert: der}
}

// Spec describes the APK to build.
type Spec struct {
	Package     string
	VersionCode int64
	VersionName string
	MinSDK      int
	TargetSDK   int
	Permissions []string
	Signer      *Signer // nil: a fresh signer
	// Padding adds an uncompressed asset of this many bytes (to make large APKs).
	Padding int
}

var (
	fwOnce  sync.Once
	fwBytes []byte
	fwErr   error
)

// framework builds (once per test binary) the stand-in framework package that gives the android:
// attributes their real IDs, and returns its bytes. Its build directory is removed at once: a
// test binary has no hook to clean up after its last test, so nothing it keeps may live on disk.
func framework(aapt string) ([]byte, error) {
	fwOnce.Do(func() { fwBytes, fwErr = buildFramework(aapt) })
	return fwBytes, fwErr
}

func buildFramework(aapt string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "provkit-testapk-fw-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "res", "values"), 0o755); err != nil {
		return nil, err
	}
	attrs := []struct{ name, format, id string }{
		{"label", "string|reference", "0x01010001"}, {"name", "string", "0x01010003"},
		{"minSdkVersion", "integer|string", "0x0101020c"}, {"versionCode", "integer", "0x0101021b"},
		{"versionName", "string", "0x0101021c"}, {"targetSdkVersion", "integer|string", "0x01010270"},
	}
	var b strings.Builder
	b.WriteString("<resources>\n")
	for _, a := range attrs {
		fmt.Fprintf(&b, "  <attr name=%q format=%q/>\n  <public type=\"attr\" name=%q id=%q/>\n", a.name, a.format, a.name, a.id)
	}
	b.WriteString("</resources>\n")
	if err := os.WriteFile(filepath.Join(dir, "res", "values", "attrs.xml"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "AndroidManifest.xml"), []byte(`<manifest package="android"/>`), 0o644); err != nil {
		return nil, err
	}
	apk := filepath.Join(dir, "framework.apk")
	out, err := exec.Command(aapt, "package", "-f", "-x", "-M", filepath.Join(dir, "AndroidManifest.xml"), "-S", filepath.Join(dir, "res"), "-F", apk).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("aapt framework: %v\n%s", err, out)
	}
	return os.ReadFile(apk)
}

// Build returns the bytes of a signed APK built to spec with aapt and apksigner. It skips t when
// the tools are missing (fails in strict mode).
func Build(t testing.TB, spec Spec) []byte {
	t.Helper()
	tools := testtool.Require(t, "aapt", "apksigner")
	aapt, apksigner := tools[0], tools[1]
	fw, err := framework(aapt)
	if err != nil {
		t.Fatal(err)
	}
	if spec.VersionName == "" {
		spec.VersionName = fmt.Sprint(spec.VersionCode)
	}
	if spec.MinSDK == 0 {
		spec.MinSDK = 24
	}
	if spec.TargetSDK == 0 {
		spec.TargetSDK = 34
	}
	dir := t.TempDir()
	fwPath := filepath.Join(dir, "framework.apk")
	if err := os.WriteFile(fwPath, fw, 0o644); err != nil {
		t.Fatal(err)
	}
	var m strings.Builder
	fmt.Fprintf(&m, `<manifest xmlns:android="http://schemas.android.com/apk/res/android" package=%q android:versionCode="%d" android:versionName=%q>`+"\n",
		spec.Package, spec.VersionCode, html.EscapeString(spec.VersionName))
	fmt.Fprintf(&m, `  <uses-sdk android:minSdkVersion="%d" android:targetSdkVersion="%d"/>`+"\n", spec.MinSDK, spec.TargetSDK)
	for _, p := range spec.Permissions {
		fmt.Fprintf(&m, `  <uses-permission android:name=%q/>`+"\n", p)
	}
	m.WriteString("  <application/>\n</manifest>\n")
	if err := os.WriteFile(filepath.Join(dir, "AndroidManifest.xml"), []byte(m.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"package", "-f", "-M", filepath.Join(dir, "AndroidManifest.xml"), "-I", fwPath, "-F", filepath.Join(dir, "unsigned.apk")}
	if spec.Padding > 0 {
		assets := filepath.Join(dir, "assets")
		if err := os.MkdirAll(assets, 0o755); err != nil {
			t.Fatal(err)
		}
		pad := make([]byte, spec.Padding)
		if _, err := rand.Read(pad); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(assets, "padding.bin"), pad, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-A", assets, "-0", "bin")
	}
	if out, err := exec.Command(aapt, args...).CombinedOutput(); err != nil {
		t.Fatalf("aapt package: %v\n%s", err, out)
	}
	s := spec.Signer
	if s == nil {
		s = NewSigner(t, spec.Package)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath := filepath.Join(dir, "key.pk8"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyPath, pk8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Cert}), 0o644); err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "signed.apk")
	if out, err := exec.Command(apksigner, "sign", "--key", keyPath, "--cert", certPath, "--out", signed, filepath.Join(dir, "unsigned.apk")).CombinedOutput(); err != nil {
		t.Fatalf("apksigner sign: %v\n%s", err, out)
	}
	b, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
