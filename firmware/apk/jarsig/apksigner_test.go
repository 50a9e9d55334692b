package jarsig_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk/cert"
	"github.com/provkit/provkit/firmware/apk/internal/jartest"
	"github.com/provkit/provkit/firmware/apk/jarsig"
	"github.com/provkit/provkit/internal/testtool"
)

// baseFiles returns the entries of the suite's unsigned golden APK (a real AndroidManifest.xml,
// which apksigner needs) followed by the crafted test files.
func baseFiles(t testing.TB) []jartest.File {
	b := readFile(t, filepath.Join(suiteDir, "golden-unaligned-in.apk"))
	r, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out []jartest.File
	for _, f := range r.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, jartest.File{Name: f.Name, Data: data})
	}
	for _, f := range files() {
		if f.Name != "AndroidManifest.xml" {
			out = append(out, f)
		}
	}
	return out
}

var (
	dnRE  = regexp.MustCompile(`(?m)^Signer #1 certificate DN: (.*)$`)
	shaRE = regexp.MustCompile(`(?m)^Signer #1 certificate SHA-256 digest: ([0-9a-f]{64})$`)
)

// TestCraftedAgainstApksigner verifies each crafted APK with jarsig and with Debian's apksigner
// for the same API level range, and requires the same verdict and, when it verifies, the same
// first signer (certificate SHA-256 and DN).
func TestCraftedAgainstApksigner(t *testing.T) {
	apksigner := testtool.Require(t, "apksigner")[0]
	if testing.Short() {
		t.Skip("runs apksigner once per case")
	}
	base := baseFiles(t)
	dir := t.TempDir()
	for i, tc := range craftedCases(t) {
		if len(tc.found) > 0 {
			continue // needs a v2/v3 block, which jartest does not write
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.spec.Files = base
			apk := jartest.Build(tc.spec)
			path := filepath.Join(dir, strconv.Itoa(i)+".apk")
			if err := os.WriteFile(path, apk, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := jarsig.Verify(context.Background(), openZip(t, apk), jarsig.Options{MinSDK: tc.min, MaxSDK: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"verify", "-v", "--print-certs", "--min-sdk-version", strconv.Itoa(tc.min)}
			if tc.max != math.MaxInt {
				args = append(args, "--max-sdk-version", strconv.Itoa(tc.max))
			}
			out, err := exec.Command(apksigner, append(args, path)...).CombinedOutput()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			apksignerOK := err == nil
			if apksignerOK != res.Verified {
				t.Fatalf("apksigner verifies=%v, jarsig verified=%v\napksigner:\n%s\njarsig:%s", apksignerOK, res.Verified, out, allIssues(res))
			}
			if !res.Verified {
				return
			}
			c, err := cert.Parse(res.Signers[0].Certs[0])
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(c.Raw)
			if m := shaRE.FindSubmatch(out); m == nil || string(m[1]) != hex.EncodeToString(sum[:]) {
				t.Errorf("apksigner's signer #1 SHA-256 %q, jarsig's %x", m, sum)
			}
			if m := dnRE.FindSubmatch(out); m == nil || strings.TrimSpace(string(m[1])) != c.Subject.String() {
				t.Errorf("apksigner's signer #1 DN %q, cert's %q", m, c.Subject.String())
			}
		})
	}
}

var signerRE = regexp.MustCompile(`(?m)^Signer #(\d+) (certificate DN|certificate SHA-256 digest|key algorithm|key size \(bits\)): (.*)$`)

// apksignerSigners runs apksigner verify --print-certs and returns, per signer, the printed
// fields.
func apksignerSigners(t *testing.T, apksigner, path string, min, max int) ([]map[string]string, string) {
	args := []string{"verify", "-v", "--print-certs", "--min-sdk-version", strconv.Itoa(min), "--max-sdk-version", strconv.Itoa(max), path}
	out, err := exec.Command(apksigner, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("apksigner: %v\n%s", err, out)
	}
	var signers []map[string]string
	for _, m := range signerRE.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		for len(signers) < n {
			signers = append(signers, map[string]string{})
		}
		signers[n-1][m[2]] = m[3]
	}
	return signers, string(out)
}

// TestSuiteSignersAgainstApksigner compares, on suite APKs whose JAR signature verifies, every
// signer jarsig reports (certificate SHA-256, DN, key algorithm and size) with what Debian's
// apksigner prints, in order.
func TestSuiteSignersAgainstApksigner(t *testing.T) {
	apksigner := testtool.Require(t, "apksigner")[0]
	if testing.Short() {
		t.Skip("runs apksigner once per file")
	}
	files := []struct {
		name     string
		min, max int
	}{
		{"v1-only-with-rsa-pkcs1-sha256-1.2.840.113549.1.1.1-2048.apk", 18, 30},
		{"v1-only-with-rsa-pkcs1-md5-1.2.840.113549.1.1.4-16384.apk", 21, 30},
		{"v1-only-with-ecdsa-sha256-1.2.840.10045.2.1-p384.apk", 18, 30},
		{"v1-only-with-ecdsa-sha512-1.2.840.10045.4.3.4-p521.apk", 21, 30},
		{"v1-only-with-dsa-sha256-1.2.840.10040.4.1-1024.apk", 22, 30},
		{"v1-only-with-rsa-1024-cert-not-der.apk", 18, 30},
		{"v1-only-with-rsa-1024-cert-not-der2.apk", 18, 30},
		{"v1v2v3-rsa-2048-negmod-in-cert.apk", 18, 23},
		{"v1-only-two-signers.apk", 21, 30},
		{"v1-only-10-signers.apk", 22, 30},
		{"v1-only-pkcs7-cert-bag-first-cert-not-used.apk", 18, 30},
		{"v1-only-with-signed-attrs-signerInfo1-wrong-content-type-signerInfo2-good.apk", 24, 30},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(suiteDir, f.name)
			apk := readFile(t, path)
			res, err := jarsig.Verify(context.Background(), openZip(t, apk), jarsig.Options{MinSDK: f.min, MaxSDK: f.max})
			if err != nil || !res.Verified {
				t.Fatalf("err %v:%s", err, allIssues(res))
			}
			want, out := apksignerSigners(t, apksigner, path, f.min, f.max)
			if len(want) != len(res.Signers) {
				t.Fatalf("%d signers, apksigner prints %d:\n%s", len(res.Signers), len(want), out)
			}
			for i, s := range res.Signers {
				c, err := cert.Parse(s.Certs[0])
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(c.Raw)
				got := map[string]string{
					"certificate DN":             c.Subject.String(),
					"certificate SHA-256 digest": hex.EncodeToString(sum[:]),
					"key algorithm":              c.KeyAlgorithm,
					"key size (bits)":            strconv.Itoa(c.KeySize),
				}
				for k, v := range got {
					if want[i][k] != v {
						t.Errorf("signer #%d %s: %q, apksigner %q", i+1, k, v, want[i][k])
					}
				}
			}
		})
	}
}
