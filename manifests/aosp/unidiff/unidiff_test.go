package unidiff

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

func TestDiffSmall(t *testing.T) {
	got := Diff("a/x", "b/x", "a\nb\nc\n", "a\nB\nc\nd\n")
	want := "--- a/x\n+++ b/x\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if Diff("a", "b", "same\n", "same\n") != "" {
		t.Fatal("equal texts must give no diff")
	}
	if got := Diff("/dev/null", "b/n", "", "x\n"); got != "--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+x\n" {
		t.Fatalf("creation diff %q", got)
	}
}

// TestPatchAppliesDiff checks the diffs against GNU patch: applying the diff to the old text must
// give the new text exactly, for texts with several distant hunks and a missing final newline.
func TestPatchAppliesDiff(t *testing.T) {
	patch := testtool.Require(t, "patch")[0]
	var old, new strings.Builder
	for i := 0; i < 60; i++ {
		old.WriteString("line " + string(rune('a'+i%26)) + "\n")
		switch {
		case i == 3:
			new.WriteString("inserted\n")
			new.WriteString("line " + string(rune('a'+i%26)) + "\n")
		case i == 20:
		case i == 40:
			new.WriteString("changed\n")
		default:
			new.WriteString("line " + string(rune('a'+i%26)) + "\n")
		}
	}
	cases := [][2]string{
		{old.String(), new.String()},
		{"a\nb", "a\nc"},
		{"x\n", ""},
		{"", "y\nz\n"},
	}
	for i, c := range cases {
		dir := t.TempDir()
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, []byte(c[0]), 0o644); err != nil {
			t.Fatal(err)
		}
		d := Diff("a/f", "b/f", c[0], c[1])
		cmd := exec.Command(patch, "-s", "-p1", "--posix")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v\n%s\n%s", i, err, out, d)
		}
		got, _ := os.ReadFile(f)
		if string(got) != c[1] {
			t.Errorf("case %d: patched text differs:\n%q\nwant\n%q\ndiff:\n%s", i, got, c[1], d)
		}
	}
}
