package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/provision/adb/adbtest"
)

// TestCheckNoDeviceStillOneDocument: with a real adb server that lists no device, check exits 3,
// says why on stderr, and --json / --csv still print one valid (empty) document for scripts.
func TestCheckNoDeviceStillOneDocument(t *testing.T) {
	srv := adbtest.StartServer(t)
	t.Setenv("ANDROID_ADB_SERVER_PORT", strconv.Itoa(srv.Port))
	pol := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(pol, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: test}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "3f2a6e2bd4a8f5c8b3e4f1a09c1d2e3f4a5b6c7d8e9f00112233445566778899"}]
`), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := run("check", "--policy", pol, "--all", "--json")
	if code != 3 || !strings.Contains(errOut, "no device to check") {
		t.Fatalf("--json: exit %d, stderr %q", code, errOut)
	}
	var doc struct {
		Devices []json.RawMessage     `json:"devices"`
		Summary struct{ Devices int } `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Devices == nil || len(doc.Devices) != 0 || doc.Summary.Devices != 0 {
		t.Errorf("--json stdout %q (%v): want one document with an empty device list", out, err)
	}

	out, _, code = run("check", "--policy", pol, "--all", "--csv")
	if code != 3 || out != "serial,verdict,model,fingerprint,reasons\n" {
		t.Errorf("--csv: exit %d, stdout %q: want the header alone", code, out)
	}

	out, _, code = run("check", "--policy", pol, "--all")
	if code != 3 || out != "" {
		t.Errorf("table: exit %d, stdout %q: want nothing on stdout", code, out)
	}
}
