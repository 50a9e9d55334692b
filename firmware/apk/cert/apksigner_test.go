package cert_test

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/provkit/provkit/firmware/apk/cert"
	d "github.com/provkit/provkit/firmware/apk/internal/dertest"
	"github.com/provkit/provkit/internal/testtool"
)

// TestDNMatchesApksigner signs an APK with one v1 signer per DN case (certificates with unusual
// names, string types and characters), has Debian's apksigner print the signers, and checks that
// Name.String and the SHA-256 digest agree with what apksigner prints for each certificate.
func TestDNMatchesApksigner(t *testing.T) {
	apksigner := testtool.Require(t, "apksigner")[0]
	dir := t.TempDir()
	key := testKey(t)
	pk8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pk8")
	if err := os.WriteFile(keyFile, pk8, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "signed.apk")
	args := []string{"sign", "--v2-signing-enabled", "false", "--v3-signing-enabled", "false", "--out", out}
	want := map[string]string{} // certificate SHA-256 -> DN
	for i, tc := range dnCases {
		der := d.Cert(d.CertSpec{Key: key, Subject: tc.dn})
		c, err := cert.Parse(der)
		if err != nil {
			t.Fatal(err)
		}
		sum := c.SHA256()
		want[hex.EncodeToString(sum[:])] = c.Subject.String()
		certFile := filepath.Join(dir, fmt.Sprintf("c%d.der", i))
		if err := os.WriteFile(certFile, der, 0o644); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			args = append(args, "--next-signer")
		}
		args = append(args, "--key", keyFile, "--cert", certFile, "--v1-signer-name", fmt.Sprintf("S%d", i))
	}
	args = append(args, filepath.Join(suiteDir, "golden-unaligned-in.apk"))
	if b, err := exec.Command(apksigner, args...).CombinedOutput(); err != nil {
		t.Fatalf("apksigner sign: %v\n%s", err, b)
	}
	b, err := exec.Command(apksigner, "verify", "--print-certs", out).CombinedOutput()
	if err != nil {
		t.Fatalf("apksigner verify: %v\n%s", err, b)
	}
	re := regexp.MustCompile(`(?s)Signer #(\d+) certificate DN: (.*?)\nSigner #(\d+) certificate SHA-256 digest: ([0-9a-f]{64})\n`)
	got := re.FindAllStringSubmatch(string(b), -1)
	if len(got) != len(dnCases) {
		t.Fatalf("apksigner printed %d signers, want %d:\n%s", len(got), len(dnCases), b)
	}
	for _, m := range got {
		dn, ok := want[m[4]]
		if !ok {
			t.Errorf("apksigner printed a certificate digest %s that cert did not compute", m[4])
			continue
		}
		if dn != m[2] {
			t.Errorf("DN differs from apksigner's\n got       %q\n apksigner %q", dn, m[2])
		}
	}
}
