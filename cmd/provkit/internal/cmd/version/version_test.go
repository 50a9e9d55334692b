package version

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/internal/buildinfo"
)

var stamped = buildinfo.Info{
	Version:   "v1.2.3",
	Revision:  "0123456789abcdef0123456789abcdef01234567",
	Time:      time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC),
	Modified:  true,
	GoVersion: "go1.26.8",
}

func TestVersionText(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	if err := versionRun(&Options{IO: ios, Info: func() buildinfo.Info { return stamped }}); err != nil {
		t.Fatal(err)
	}
	want := "provkit v1.2.3\nrevision: 0123456789abcdef0123456789abcdef01234567 (modified)\ncommit time: 2026-12-05T10:00:00Z\ngo: go1.26.8\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestVersionJSON(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	if err := versionRun(&Options{IO: ios, JSON: true, Info: func() buildinfo.Info { return stamped }}); err != nil {
		t.Fatal(err)
	}
	var got buildinfo.Info
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got != stamped {
		t.Errorf("round trip: got %+v, want %+v", got, stamped)
	}
}

// TestVersionUnstamped: a build without VCS information prints no revision lines, never empty ones.
func TestVersionUnstamped(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	if err := versionRun(&Options{IO: ios, Info: func() buildinfo.Info { return buildinfo.Info{Version: "(devel)", GoVersion: "go1.26.8"} }}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "provkit (devel)\ngo: go1.26.8\n" || strings.Contains(got, "revision") {
		t.Errorf("got %q", got)
	}
}

func TestVersionRejectsArgs(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := NewCmdVersion(ios)
	cmd.SetArgs([]string{"extra"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err == nil {
		t.Fatal("version extra: want a usage error")
	}
}
