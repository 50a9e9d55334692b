package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestPackageDeb builds the Debian package with scripts/package-deb.sh, unpacks it into a
// temporary root with dpkg -x (as an install would lay it out) and runs provkit from there.
func TestPackageDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds provkit and a .deb; skipped with -short")
	}
	tools := testtool.Require(t, "dpkg-deb", "dpkg", "bash", "gzip")
	dpkgDeb, dpkg := tools[0], tools[1]
	out := t.TempDir()
	const version = "1.2.3~test1"
	script := exec.Command("bash", "../../scripts/package-deb.sh", "-o", out, version)
	script.Stderr = os.Stderr
	b, err := script.Output()
	if err != nil {
		t.Fatalf("package-deb.sh: %v\n%s", err, b)
	}
	deb := filepath.Join(out, "provkit_"+version+"_amd64.deb")
	if got := strings.TrimSpace(string(b)); got != deb {
		t.Errorf("package-deb.sh printed %q, want the package path %q", got, deb)
	}

	field := func(name string) string {
		b, err := exec.Command(dpkgDeb, "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(b))
	}
	for name, want := range map[string]string{"Package": "provkit", "Version": version, "Architecture": "amd64",
		"Recommends": "adb, fastboot", "Depends": "", "Pre-Depends": ""} {
		if got := field(name); got != want {
			t.Errorf("control field %s = %q, want %q", name, got, want)
		}
	}

	root := t.TempDir()
	if b, err := exec.Command(dpkg, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x: %v\n%s", err, b)
	}
	bin := filepath.Join(root, "usr/bin/provkit")
	v, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, v)
	}
	if got := strings.TrimSpace(string(v)); !strings.HasPrefix(got, "provkit "+version) {
		t.Errorf("installed provkit --version = %q, want provkit %s", got, version)
	}
	// Static: no program interpreter (dynamic loader) to satisfy on the factory PC.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not a static binary", bin)
		}
	}
	for _, p := range []string{
		"usr/share/man/man1/provkit.1.gz", "usr/share/man/man1/provkit-check.1.gz", "usr/share/man/man1/provkit-version.1.gz",
		"usr/share/bash-completion/completions/provkit", "usr/share/zsh/vendor-completions/_provkit",
		"usr/share/fish/vendor_completions.d/provkit.fish",
	} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty in the package: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/share/bash-completion/completions/provkit")); err == nil &&
		!strings.Contains(string(b), "__start_provkit") {
		t.Errorf("bash completion script does not define __start_provkit")
	}
	// A bad version is refused before anything is built (usage error, exit 2).
	bad := exec.Command("bash", "../../scripts/package-deb.sh", "-o", out, "v1.0")
	if err := bad.Run(); err == nil || bad.ProcessState.ExitCode() != 2 {
		t.Errorf("package-deb.sh v1.0: %v, want exit 2 (not a Debian version)", err)
	}
}
