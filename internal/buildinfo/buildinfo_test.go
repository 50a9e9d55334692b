package buildinfo

import (
	"strings"
	"testing"
	"time"
)

func TestGetHasGoVersion(t *testing.T) {
	in := Get()
	if !strings.HasPrefix(in.GoVersion, "go") {
		t.Fatalf("GoVersion = %q, want a go toolchain version", in.GoVersion)
	}
	if in.Version == "" {
		t.Fatal("Version is empty")
	}
}

func TestLinkTimeVersionWins(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.9.9"
	if got := Get().Version; got != "v9.9.9" {
		t.Fatalf("Version = %q, want the link-time v9.9.9", got)
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v1.0.0", Revision: "0123456789abcdef0123", Time: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), Modified: true}
	want := "v1.0.0 (rev 0123456789ab, 2026-12-05T10:00:00Z, modified)"
	if got := in.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "(devel)"}).String(); got != "(devel)" {
		t.Fatalf("String() = %q, want (devel)", got)
	}
}
