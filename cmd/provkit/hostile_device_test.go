package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/provision/sim"
)

// A phone whose model, fingerprint and serial hold escape sequences (erase the line, carriage
// return, set the window title, bidi override) cannot forge the verdict table: check and devices
// print them made visible, and nothing that a terminal would act on reaches stdout or stderr.
func TestHostilePhoneStringsAreMadeVisible(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(sc, []byte(`apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - serial: "EVIL\u001b[2K\r001"
    model: "Pixel\u001b[2K\rPASS  FAKE  compliant"
    properties:
      ro.build.fingerprint: "evil/x/x:14/A/1:user/release-keys\u001b]0;owned\u0007\u202e"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pol, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: test}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "3f2a6e2bd4a8f5c8b3e4f1a09c1d2e3f4a5b6c7d8e9f00112233445566778899"}]
devices:
  fingerprints: ["google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	scen, err := sim.LoadScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: scen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := s.Devices()[0].ADBAddr()
	for _, args := range [][]string{
		{"check", "--policy", pol, "--direct", addr, "--timeout", "60s"},
		{"devices", "--direct", addr},
	} {
		out, errOut, code := run(args...)
		all := out + errOut
		if strings.ContainsAny(all, "\x1b\r\x07\u202e") {
			t.Fatalf("%s: a control character reached the terminal (exit %d):\nstdout %q\nstderr %q", args[0], code, out, errOut)
		}
		if !strings.Contains(all, `\x1b`) {
			t.Fatalf("%s: the device's strings are not shown (made visible):\nstdout %q\nstderr %q", args[0], out, errOut)
		}
	}
}
