package flash

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/evidence"
)

const missingAppPolicy = `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger, authority: "test"}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "` + "0000000000000000000000000000000000000000000000000000000000000000" + `"}]
    minVersionCode: 1
    partition: product
`

// TestFlashRefusesNonCompliantFirmware: a system image without the mandated app fails the audit,
// the command exits 4 and no device is even contacted.
func TestFlashRefusesNonCompliantFirmware(t *testing.T) {
	mke2fs := testtool.Require(t, "mke2fs")[0]
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "app"), 0o755)
	os.WriteFile(filepath.Join(root, "build.prop"), []byte("ro.build.fingerprint=a/b/c:14/X/1:user/release-keys\n"), 0o644)
	if out, err := exec.Command(mke2fs, "-q", "-t", "ext4", "-d", root, filepath.Join(dir, "system.img"), "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "android-info.txt"), []byte("require board=x\n"), 0o644)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte(missingAppPolicy), 0o644)

	// A listener that records whether anything connected.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	contacted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			contacted <- struct{}{}
			c.Close()
		}
	}()
	ios, _, _, errOut := iostreams.Test()
	opts := &Options{IO: ios, Firmware: dir, PolicyPath: pol, Jobs: 1, TCP: []string{ln.Addr().String()}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = flashRun(ctx, opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitNotCompliant {
		t.Fatalf("exit %d (%v), want 4; stderr:\n%s", cmdutil.ExitCode(err), err, errOut)
	}
	if !strings.Contains(errOut.String(), "nothing was sent") {
		t.Errorf("stderr: %s", errOut)
	}
	select {
	case <-contacted:
		t.Error("a device was contacted although the firmware was refused")
	default:
	}

	// With --attest the refusal is signed evidence: not compliant, the audit rule failed, and the
	// firmware's image is a subject by its SHA-256.
	keys := filepath.Join(t.TempDir(), "keys")
	if _, err := evidence.GenerateKeys(keys); err != nil {
		t.Fatal(err)
	}
	att := filepath.Join(t.TempDir(), "flash.dsse.json")
	opts.Attest = attestflag.Flags{Path: att, KeyPath: filepath.Join(keys, evidence.PrivateKeyFile)}
	if err := flashRun(ctx, opts); cmdutil.ExitCode(err) != cmdutil.ExitNotCompliant {
		t.Fatalf("attested run: exit %d (%v)", cmdutil.ExitCode(err), err)
	}
	env, err := evidence.ReadFile(att)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := evidence.LoadPublicKey(filepath.Join(keys, evidence.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := evidence.Verify(env, pub, evidence.VerifyOptions{Files: []string{filepath.Join(dir, "system.img")}, PolicyPath: pol})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Statement.Predicate
	if p.Kind != evidence.KindFlash || p.Verdict != evidence.VerdictNotCompliant || len(p.Rules) == 0 || p.Rules[0].Rule != "firmware-audit" || p.Rules[0].Pass {
		t.Fatalf("statement %+v", p)
	}
}
