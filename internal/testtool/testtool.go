package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing reference tools fail tests instead of skipping them.
func Strict() bool { return os.Getenv("PROVKIT_REQUIRE_TOOLS") == "1" }

// Require returns the path of each named program, skipping (or, when Strict, failing) t if any is
// missing from PATH.
func Require(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(names))
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, n+" is not installed (scripts/test.sh installs it)")
		}
		paths = append(paths, p)
	}
	return paths
}

// Missing skips t, or fails it when Strict, with why.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("reference missing: %s", why)
	}
	t.Skipf("skipping: %s", why)
}
