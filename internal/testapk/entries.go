package testapk

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// Entry is a file BuildWith adds to an APK.
type Entry struct {
	Name string
	Data []byte
	// Stored keeps it uncompressed (ZIP method STORED); otherwise it is deflated.
	Stored bool
}

// BuildWith builds spec's APK with aapt, adds entries (e.g. a classes.dex or lib/arm64-v8a/*.so,
// stored or compressed) with archive/zip, aligns it with the real `zipalign -f -p 4` and signs it
// with apksigner: the way an app vendor produces an APK that a build may install byte for byte.
func BuildWith(t testing.TB, spec Spec, entries []Entry) []byte {
	t.Helper()
	tools := testtool.Require(t, "zipalign", "apksigner")
	zipalign, apksigner := tools[0], tools[1]
	if spec.Signer == nil {
		spec.Signer = NewSigner(t, spec.Package)
	}
	signed := Build(t, spec)
	zr, err := zip.NewReader(bytes.NewReader(signed), int64(len(signed)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, "META-INF/") {
			continue // the old signature
		}
		r, err := f.OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.CreateRaw(&f.FileHeader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate}
		if e.Stored {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unaligned, aligned, out := filepath.Join(dir, "unaligned.apk"), filepath.Join(dir, "aligned.apk"), filepath.Join(dir, "out.apk")
	if err := os.WriteFile(unaligned, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(zipalign, "-f", "-p", "4", unaligned, aligned).CombinedOutput(); err != nil {
		t.Fatalf("zipalign: %v\n%s", err, o)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(spec.Signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath := filepath.Join(dir, "key.pk8"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(keyPath, pk8, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spec.Signer.Cert}), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command(apksigner, "sign", "--key", keyPath, "--cert", certPath, "--out", out, aligned).CombinedOutput(); err != nil {
		t.Fatalf("apksigner sign: %v\n%s", err, o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
