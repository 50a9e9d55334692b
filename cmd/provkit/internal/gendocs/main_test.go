package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// repoDocs is docs/ at the repository root, seen from this package's directory.
const repoDocs = "../../../../docs"

// TestCommittedReferenceIsCurrent regenerates docs/cli and docs/man into a temporary directory and
// fails when the committed pages differ: a command, flag or help text changed without
// regenerating.
func TestCommittedReferenceIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	if err := Generate(tmp); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"cli", "man"} {
		want := files(t, filepath.Join(tmp, sub))
		have := files(t, filepath.Join(repoDocs, sub))
		var problems []string
		for name, w := range want {
			h, ok := have[name]
			switch {
			case !ok:
				problems = append(problems, "missing docs/"+sub+"/"+name)
			case !bytes.Equal(h, w):
				problems = append(problems, "out of date docs/"+sub+"/"+name)
			}
		}
		for name := range have {
			if _, ok := want[name]; !ok {
				problems = append(problems, "stale docs/"+sub+"/"+name+" (no such command)")
			}
		}
		sort.Strings(problems)
		if len(problems) > 0 {
			t.Errorf("the command reference differs from the commands:\n  %s\nregenerate it from the repository root with:\n  %s",
				strings.Join(problems, "\n  "), Command)
		}
	}
}

// TestPagesCoverEveryCommand: the generator writes a page for the root, a nested command and
// cobra's completion command, and the man pages carry the fixed date (no regeneration churn).
func TestPagesCoverEveryCommand(t *testing.T) {
	tmp := t.TempDir()
	if err := Generate(tmp); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cli/provkit.md", "cli/provkit_image_audit.md", "cli/provkit_completion_bash.md", "cli/provkit_version.md",
		"man/provkit.1", "man/provkit-image-audit.1", "man/provkit-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(tmp, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if strings.Contains(string(b), "Auto generated") {
			t.Errorf("%s carries a generation-date footer", p)
		}
	}
	b, err := os.ReadFile(filepath.Join(tmp, "cli/provkit_image_audit.md"))
	if err == nil && !strings.Contains(string(b), "EXIT STATUS") {
		t.Errorf("provkit_image_audit.md lacks the EXIT STATUS block:\n%s", b)
	}
	// A second run into the same directory is byte-identical and removes nothing it should keep.
	first := files(t, filepath.Join(tmp, "man"))
	if err := Generate(tmp); err != nil {
		t.Fatal(err)
	}
	second := files(t, filepath.Join(tmp, "man"))
	if len(first) != len(second) {
		t.Fatalf("second run wrote %d man pages, first %d", len(second), len(first))
	}
	for n, b := range first {
		if !bytes.Equal(b, second[n]) {
			t.Errorf("%s differs between two runs", n)
		}
	}
}

func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}
