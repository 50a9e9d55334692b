package demoapk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/sim/android"
)

func TestBuildVerifies(t *testing.T) {
	key, err := NewKey("demo")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := apk.Verify(context.Background(), bytes.NewReader(b), int64(len(b)), apk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Package != "ru.oneme.app" || res.VersionCode != 25 || len(res.Signers) != 1 || res.Signers[0].SHA256 != key.CertSHA256() {
		t.Fatalf("verify: %+v", res)
	}
	info, err := android.ReadAPKInfo(bytes.NewReader(b), int64(len(b)))
	if err != nil || info.Package != "ru.oneme.app" || info.VersionCode != 25 || info.MinSDK != 24 {
		t.Fatalf("simulator reads %+v, %v", info, err)
	}
	// One byte changed in the asset: no longer verifies.
	off, err := AssetOffset(b)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), b...)
	bad[off] ^= 1
	res, err = apk.Verify(context.Background(), bytes.NewReader(bad), int64(len(bad)), apk.Options{})
	if err == nil && res.Verified {
		t.Fatal("tampered APK verifies")
	}

	signer := testtool.Require(t, "apksigner")[0]
	dir := t.TempDir()
	p := filepath.Join(dir, "demo.apk")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(signer, "verify", "-v", "--print-certs", p).CombinedOutput()
	if err != nil {
		t.Fatalf("apksigner: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Verified using v2 scheme (APK Signature Scheme v2): true") || !strings.Contains(string(out), key.CertSHA256()) {
		t.Fatalf("apksigner output:\n%s", out)
	}
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(signer, "verify", p).CombinedOutput(); err == nil {
		t.Fatalf("apksigner accepts the tampered APK:\n%s", out)
	}
}
