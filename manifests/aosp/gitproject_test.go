package aosp

import (
	"strings"
	"testing"
)

func TestModuleDirOutsideEveryRepoProject(t *testing.T) {
	files := copyTree(lineageTree)
	files[".repo/project.list"] = "build/make\nbuild/soong\ndevice/acme/foo\nframeworks/base\nvendor/gapps\nvendor/lineage\nvendor/partner_gms\n"
	root := writeTree(t, files)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, nil)
	notes := strings.Join(p.Notes, "\n")
	if !strings.Contains(notes, "vendor/acme/preinstall belongs to no git project of this repo checkout") || !strings.Contains(notes, "--module-dir <dir> (e.g. device/acme/foo/preinstall)") {
		t.Fatalf("notes:\n%s", notes)
	}
	p = prepare(t, root, pol, func(o *Options) { o.Dir = "device/acme/foo/preinstall" })
	if strings.Contains(strings.Join(p.Notes, "\n"), "no git project") {
		t.Fatalf("inside device/acme/foo, still noted: %v", p.Notes)
	}
	if p.Blocked() || p.Apps[0].Dir != "device/acme/foo/preinstall/Max" {
		t.Fatalf("blockers %v, dir %s", p.Blockers, p.Apps[0].Dir)
	}
}

// TestCheckKeepsTheFormatWritten: after an apply with Android.mk, a plain check (no format) finds
// the tree compliant instead of asking to replace the Android.mk by an Android.bp.
func TestCheckKeepsTheFormatWritten(t *testing.T) {
	root := writeTree(t, lineageTree)
	pol := loadPolicy(t, root, basePolicy)
	p := prepare(t, root, pol, func(o *Options) { o.Format = FormatMk })
	if p.Blocked() {
		t.Fatal(p.Blockers)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	p = prepare(t, root, pol, nil)
	if p.Format != FormatMk || !p.Compliant() {
		t.Fatalf("format %s, changes %v, blockers %v", p.Format, p.Changes, p.Blockers)
	}
	// Asking for bp explicitly still converts.
	p = prepare(t, root, pol, func(o *Options) { o.Format = FormatBp })
	if p.Compliant() {
		t.Fatal("--format bp after mk: nothing to change")
	}
}
