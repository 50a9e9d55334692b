package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ReferenceTools returns the directory of the reference tools Debian does not package
// (../shared/reference-tools relative to the repository root: avbtool.py and its test keys),
// skipping t (failing when Strict) when it or python3/openssl are missing.
func ReferenceTools(t testing.TB) string {
	t.Helper()
	Require(t, "python3", "openssl")
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	ref := filepath.Join(dir, "..", "shared", "reference-tools")
	if _, err := os.Stat(filepath.Join(ref, "avbtool.py")); err != nil {
		Missing(t, "avbtool.py not found in "+ref)
	}
	return ref
}

// Avbtool runs ref/avbtool.py with args and returns its combined output, failing t on error.
func Avbtool(t testing.TB, ref string, args ...string) string {
	t.Helper()
	out, err := exec.Command("python3", append([]string{filepath.Join(ref, "avbtool.py")}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("avbtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
