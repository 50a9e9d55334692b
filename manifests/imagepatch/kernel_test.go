package imagepatch

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provkit/provkit/internal/testtool"
)

// kernelReads mounts a patched partition image read-only with the real kernel (testtool.MountRO:
// skipped where the kernel cannot be asked) and checks what it reads: the APK's bytes, and the
// SELinux label (and, where given, the capability) of each path, exactly as getxattr returns
// them (labels written by mkfs.erofs 1.5 have no trailing NUL, by debugfs and e2fsdroid one).
func kernelReads(t *testing.T, img, fstype, apk string, labels map[string]string, caps map[string][]byte) {
	t.Helper()
	dir := testtool.MountRO(t, img, fstype)
	want, err := os.ReadFile(apk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "app/RuOnemeApp/RuOnemeApp.apk"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("the kernel reads the APK as %d bytes (%v), want the %d of %s", len(got), err, len(want), apk)
	}
	getx := func(p, name string) []byte {
		buf := make([]byte, 512)
		n, err := unix.Lgetxattr(filepath.Join(dir, p), name, buf)
		if err != nil {
			t.Errorf("kernel getxattr %s %s: %v", p, name, err)
			return nil
		}
		return buf[:n]
	}
	for p, l := range labels {
		if g := getx(p, "security.selinux"); string(g) != l {
			t.Errorf("kernel: %s is labelled %q, want %q", p, g, l)
		}
	}
	for p, c := range caps {
		if g := getx(p, "security.capability"); !bytes.Equal(g, c) {
			t.Errorf("kernel: %s has capability %x, want %x", p, g, c)
		}
	}
}
