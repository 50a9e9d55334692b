package flash

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/manifests/evidence"
	pflash "github.com/provkit/provkit/provision/flash"
)

// The attestation of a flash names each device with a digest over the images it was sent, one
// "flashed" rule per device, and says "error" when a device could not be flashed.
func TestAttestFlashDevices(t *testing.T) {
	dir := t.TempDir()
	fw := filepath.Join(dir, "fw")
	os.MkdirAll(fw, 0o755)
	os.WriteFile(filepath.Join(fw, "boot.img"), []byte("BOOT"), 0o644)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(missingAppPolicy), 0o644)
	keys := filepath.Join(dir, "keys")
	if _, err := evidence.GenerateKeys(keys); err != nil {
		t.Fatal(err)
	}
	att := filepath.Join(dir, "a.json")
	ios, _, _, _ := iostreams.Test()
	opts := &Options{IO: ios, Firmware: fw, PolicyPath: pol, Attest: attestflag.Flags{Path: att, KeyPath: filepath.Join(keys, evidence.PrivateKeyFile)}}
	bootSum := sha256.Sum256([]byte("BOOT"))
	doc := Document{Firmware: fw, Audit: AuditSummary{Policy: pol, Compliant: true}, Devices: []DeviceResult{
		{Device: "127.0.0.1:5554", OK: true, Result: &pflash.Result{Bytes: 4, Steps: []pflash.StepResult{{SHA256: hex.EncodeToString(bootSum[:])}}}},
		{Device: "127.0.0.1:5556", OK: false, Error: "flashing boot_a at byte 0: connection reset"},
	}}
	if err := attestFlash(opts, doc); err != nil {
		t.Fatal(err)
	}
	env, err := evidence.ReadFile(att)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := evidence.LoadPublicKey(filepath.Join(keys, evidence.PublicKeyFile))
	c, err := evidence.Verify(env, pub, evidence.VerifyOptions{Files: []string{filepath.Join(fw, "boot.img")}, PolicyPath: pol})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Statement.Predicate
	if p.Verdict != evidence.VerdictError || len(p.Rules) != 3 || !p.Rules[0].Pass || !p.Rules[1].Pass || p.Rules[2].Pass {
		t.Fatalf("verdict %s rules %+v", p.Verdict, p.Rules)
	}
	want := sha256.Sum256([]byte(hex.EncodeToString(bootSum[:]) + "\n"))
	var found bool
	for _, s := range c.Statement.Subject {
		if s.Name == "device:127.0.0.1:5554" {
			found = s.Digest["sha256"] == hex.EncodeToString(want[:])
		}
	}
	if !found {
		t.Fatalf("device subject missing or with the wrong digest: %+v", c.Statement.Subject)
	}
}
