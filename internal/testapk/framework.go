package testapk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// Permission is a <permission> a stand-in framework-res.apk declares.
type Permission struct {
	Name            string
	ProtectionLevel string // as in a manifest: "signature|privileged", "dangerous", "normal"
}

// BuildFramework returns an unsigned stand-in for /system/framework/framework-res.apk: package
// "android", built by aapt in framework mode (-x), whose manifest declares perms with their
// protection levels compiled to flag bits as the real framework's are. It skips t when aapt is
// missing (fails in strict mode).
func BuildFramework(t testing.TB, perms []Permission) []byte {
	t.Helper()
	aapt := testtool.Require(t, "aapt")[0]
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "res", "values"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Attribute IDs are the real ones of android.R.attr, so the compiled manifest reads as the
	// platform's does.
	attrs := `<resources>
  <attr name="name" format="string"/>
  <public type="attr" name="name" id="0x01010003"/>
  <attr name="protectionLevel">
    <flag name="normal" value="0"/>
    <flag name="dangerous" value="1"/>
    <flag name="signature" value="2"/>
    <flag name="signatureOrSystem" value="3"/>
    <flag name="privileged" value="0x10"/>
    <flag name="development" value="0x20"/>
    <flag name="appop" value="0x40"/>
    <flag name="installer" value="0x100"/>
    <flag name="role" value="0x4000000"/>
  </attr>
  <public type="attr" name="protectionLevel" id="0x01010009"/>
</resources>
`
	if err := os.WriteFile(filepath.Join(dir, "res", "values", "attrs.xml"), []byte(attrs), 0o644); err != nil {
		t.Fatal(err)
	}
	var m strings.Builder
	m.WriteString(`<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="android">` + "\n")
	for _, p := range perms {
		fmt.Fprintf(&m, "  <permission android:name=%q android:protectionLevel=%q/>\n", p.Name, p.ProtectionLevel)
	}
	m.WriteString("</manifest>\n")
	if err := os.WriteFile(filepath.Join(dir, "AndroidManifest.xml"), []byte(m.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "framework-res.apk")
	if b, err := exec.Command(aapt, "package", "-f", "-x", "-M", filepath.Join(dir, "AndroidManifest.xml"), "-S", filepath.Join(dir, "res"), "-F", out).CombinedOutput(); err != nil {
		t.Fatalf("aapt framework-res: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
