package flash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/testimage"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/sim"
)

func randomImage(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed+1))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// isolateADB points the adb key lookups of a direct connection at a fresh directory.
func isolateADB(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ANDROID_USER_HOME", filepath.Join(home, ".android"))
	t.Setenv("ADB_VENDOR_KEYS", "")
}

// TestSideloadManyPhones runs flash --sideload on two phones in sideload mode (one through a real
// adb server by --serial, one directly by --tcp) and one booted to Android: both sideloaded
// phones hold the package's SHA-256 and reboot, the third is refused by its state, exit 3.
func TestSideloadManyPhones(t *testing.T) {
	isolateADB(t)
	srv := adbtest.StartServer(t)
	t.Setenv("ANDROID_ADB_SERVER_PORT", strconv.Itoa(srv.Port))
	devs := sideloadPhones(t, 3) // SIDE1, BOOTED, SIDE3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := srv.Connect(ctx, devs[0].ADBAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitFor(ctx, devs[0].ADBAddr(), "sideload"); err != nil {
		t.Fatal(err)
	}
	ota := filepath.Join(t.TempDir(), "ota.zip")
	testimage.OTAZip(t, ota, testimage.FullPayload(t, map[string][]byte{"boot": randomImage(512<<10, 1)}), nil)
	pkg, _ := os.ReadFile(ota)

	// --dry-run checks each phone's state and sends nothing.
	dios, _, dout, derr := iostreams.Test()
	err := sideloadRun(ctx, &Options{IO: dios, Sideload: ota, NoAudit: true, DryRun: true, Jobs: 2, Timeout: time.Minute,
		Serials: []string{devs[0].ADBAddr()}, TCP: []string{devs[1].ADBAddr()}})
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed || !strings.Contains(dout.String(), "sideload\twould run: adb sideload "+ota+" (sideload-host:"+strconv.Itoa(len(pkg))+":65536)") ||
		!strings.Contains(dout.String(), "FAILED") {
		t.Fatalf("dry run: exit %d %v\n%s%s", cmdutil.ExitCode(err), err, dout, derr)
	}
	if len(devs[0].Sideloaded())+len(devs[1].Sideloaded()) != 0 {
		t.Fatal("the dry run sent a package")
	}

	ios, _, out, errOut := iostreams.Test()
	cmd := NewCmdFlash(ios, nil)
	cmd.SetArgs([]string{"--no-audit", "--json", "--jobs", "2", "--sideload", ota,
		"--serial", devs[0].ADBAddr(), "--tcp", devs[1].ADBAddr(), "--tcp", devs[2].ADBAddr()})
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err = cmd.ExecuteContext(ctx)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
		t.Fatalf("exit %d (%v), want 3; stderr:\n%s\nstdout:\n%s", cmdutil.ExitCode(err), err, errOut, out)
	}
	var doc SideloadDocument
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if doc.Package != ota || doc.Size != int64(len(pkg)) || !doc.Audit.Skipped || len(doc.Devices) != 3 {
		t.Fatalf("document %+v", doc)
	}
	for _, i := range []int{0, 2} {
		r := doc.Devices[i]
		if !r.OK || r.Result == nil || r.Result.SHA256 != sha(pkg) || r.Result.Status != "DONEDONE" || r.State != "sideload" {
			t.Errorf("device %d: %+v %+v", i, r, r.Result)
		}
		if recs := devs[i].Sideloaded(); len(recs) != 1 || !recs[0].OK || recs[0].SHA256 != sha(pkg) {
			t.Errorf("simulated %s saw %+v", devs[i].Serial(), recs)
		}
	}
	if r := doc.Devices[1]; r.OK || !strings.Contains(r.Error, `state "device", not sideload`) || !strings.Contains(r.Error, devs[1].ADBAddr()) {
		t.Errorf("booted phone: %+v", r)
	}
	if len(devs[1].Sideloaded()) != 0 {
		t.Errorf("the booted phone got a package")
	}

	// A corrupt package: the phone answers FAILFAIL, the command names it and exits 3.
	bad := bytes.Clone(pkg)
	bad[len(bad)/2] ^= 0xff
	badPath := filepath.Join(t.TempDir(), "bad.zip")
	os.WriteFile(badPath, bad, 0o644)
	deadline := time.Now().Add(20 * time.Second)
	for !devs[2].Up() || devs[2].Mode() != sim.ModeAndroid {
		if time.Now().After(deadline) {
			t.Fatalf("SIDE3 did not reboot to Android after its sideload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	devs[2].Reboot("sideload")
	for !devs[2].Up() || devs[2].Mode() != sim.ModeSideload {
		if time.Now().After(deadline) {
			t.Fatalf("SIDE3 not back in sideload")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ios, _, out, errOut = iostreams.Test()
	err = sideloadRun(ctx, &Options{IO: ios, Sideload: badPath, NoAudit: true, Jobs: 1, Timeout: time.Minute, TCP: []string{devs[2].ADBAddr()}})
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed || !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "FAILFAIL") {
		t.Fatalf("corrupt package: exit %d (%v)\n%s%s", cmdutil.ExitCode(err), err, out, errOut)
	}
	if recs := devs[2].Sideloaded(); len(recs) != 2 || recs[1].OK || recs[1].SHA256 != sha(bad) {
		t.Fatalf("SIDE3 saw %+v", recs)
	}
}

// TestSideloadAudit: an A/B package whose system lacks the mandated app is refused before any
// phone is contacted (exit 4); a package without payload.bin cannot be audited and is refused
// unless --no-audit.
func TestSideloadAudit(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "app"), 0o755)
	os.WriteFile(filepath.Join(root, "build.prop"), []byte("ro.build.fingerprint=a/b/c:14/X/1:user/release-keys\n"), 0o644)
	system := testimage.Read(t, testimage.Ext4(t, root, 8))
	ota := filepath.Join(t.TempDir(), "ota.zip")
	testimage.OTAZip(t, ota, testimage.FullPayload(t, map[string][]byte{"system": system}), nil)
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte(missingAppPolicy), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ios, _, out, errOut := iostreams.Test()
	// 127.0.0.1:1: nothing listens; the refusal comes before any connection is tried.
	err := sideloadRun(ctx, &Options{IO: ios, Sideload: ota, PolicyPath: pol, JSON: true, Jobs: 1, Timeout: time.Minute, TCP: []string{"127.0.0.1:1"}})
	if cmdutil.ExitCode(err) != cmdutil.ExitNotCompliant || !strings.Contains(errOut.String(), "nothing was sent") {
		t.Fatalf("exit %d (%v)\n%s", cmdutil.ExitCode(err), err, errOut)
	}
	var doc SideloadDocument
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Audit.Compliant || doc.Audit.Policy != pol || len(doc.Devices) != 0 {
		t.Fatalf("JSON %v: %s", err, out)
	}

	legacy := filepath.Join(t.TempDir(), "update.zip")
	testimage.Zip(t, legacy, []testimage.ZipEntry{{Name: "META-INF/com/google/android/update-binary", Data: []byte("#!/sbin/sh\n")}})
	ios, _, _, _ = iostreams.Test()
	err = sideloadRun(ctx, &Options{IO: ios, Sideload: legacy, PolicyPath: pol, Jobs: 1, Timeout: time.Minute, TCP: []string{"127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "no payload.bin") || !strings.Contains(err.Error(), "--no-audit") {
		t.Fatalf("non-A/B package: %v", err)
	}
}

func TestSideloadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-audit", "--sideload", "ota.zip", "fw.zip", "--tcp", "x:1"}, "drop the <firmware> argument"},
		{[]string{"--no-audit", "--sideload", "ota.zip"}, "--serial"},
		{[]string{"--no-audit", "--sideload", "ota.zip", "--serial", "X", "--wipe"}, "--wipe is a fastboot flash option"},
		{[]string{"--sideload", "ota.zip", "--serial", "X"}, "--policy"},
	} {
		ios, _, _, _ := iostreams.Test()
		cmd := NewCmdFlash(ios, func(context.Context, *Options) error { return nil })
		cmd.SetArgs(tc.args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: exit %d %v, want usage error %q", tc.args, cmdutil.ExitCode(err), err, tc.want)
		}
	}
}

// TestSideloadAttest: flash --sideload --attest to a simulated phone in sideload mode and to one
// booted to Android writes an attestation that 'attest verify' accepts with the package: the
// package is a subject, the phone that took it has the package's SHA-256 as its digest and a
// passing "sideloaded" rule, the other a failing one, and the verdict is "error".
func TestSideloadAttest(t *testing.T) {
	isolateADB(t)
	devs := sideloadPhones(t, 2) // SIDE1, BOOTED
	dir := t.TempDir()
	ota := filepath.Join(dir, "ota.zip")
	testimage.OTAZip(t, ota, testimage.FullPayload(t, map[string][]byte{"boot": randomImage(256<<10, 7)}), nil)
	pkg, _ := os.ReadFile(ota)
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte(missingAppPolicy), 0o644)
	keys := filepath.Join(dir, "keys")
	if _, err := evidence.GenerateKeys(keys); err != nil {
		t.Fatal(err)
	}
	att := filepath.Join(dir, "side.dsse.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ios, _, out, errOut := iostreams.Test()
	cmd := NewCmdFlash(ios, nil)
	cmd.SetArgs([]string{"--no-audit", "--policy", pol, "--attest", att, "--key", filepath.Join(keys, evidence.PrivateKeyFile),
		"--sideload", ota, "--tcp", devs[0].ADBAddr(), "--tcp", devs[1].ADBAddr()})
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	if err := cmd.ExecuteContext(ctx); cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed {
		t.Fatalf("exit %d (%v); stdout:\n%s\nstderr:\n%s", cmdutil.ExitCode(err), err, out, errOut)
	}
	env, err := evidence.ReadFile(att)
	if err != nil {
		t.Fatalf("%v; stderr:\n%s", err, errOut)
	}
	pub, _ := evidence.LoadPublicKey(filepath.Join(keys, evidence.PublicKeyFile))
	c, err := evidence.Verify(env, pub, evidence.VerifyOptions{Files: []string{ota}, PolicyPath: pol})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Statement.Predicate
	if p.Verdict != evidence.VerdictError || len(p.Rules) != 3 || !p.Rules[0].Pass {
		t.Fatalf("verdict %s rules %+v", p.Verdict, p.Rules)
	}
	byDev := map[string]evidence.RuleResult{}
	for _, r := range p.Rules[1:] {
		byDev[r.Subject] = r
	}
	if r := byDev["device:tcp:"+devs[0].ADBAddr()]; r.Rule != "sideloaded" || !r.Pass || !strings.Contains(r.Detail, "DONEDONE") {
		t.Errorf("sideloaded phone: %+v", r)
	}
	if r := byDev["device:tcp:"+devs[1].ADBAddr()]; r.Pass || !strings.Contains(r.Detail, "not sideload") {
		t.Errorf("booted phone: %+v", r)
	}
	found := false
	for _, sub := range c.Statement.Subject {
		if sub.Name == "device:tcp:"+devs[0].ADBAddr() {
			found = sub.Digest["sha256"] == sha(pkg)
		}
	}
	if !found {
		t.Errorf("the sideloaded phone's subject does not carry the package digest: %+v", c.Statement.Subject)
	}
}

// sideloadPhones starts n simulated phones, alternately in sideload mode (SIDE<n>) and booted to
// Android (BOOTED), stopped when t ends.
func sideloadPhones(t *testing.T, n int) []*sim.Device {
	t.Helper()
	sc, err := sim.ParseScenario([]byte(`
devices:
  - serial: SIDE%d
    mode: sideload
    faults: {rebootDelay: 200ms}
  - serial: BOOTED
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: n, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Devices()
}
