package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// MountRO attaches img to a loop device, read-only, and mounts it (fstype "ext4" or "erofs")
// read-only on a new directory, which it returns; both are undone when t ends. It is the real
// kernel reading an image a test wrote. It skips t where the kernel cannot be asked (not root, no
// loop devices, a container that forbids mounting, a kernel without fstype); a mount the kernel
// refuses otherwise (a bad superblock, a corrupt file system) fails t, with the kernel's log.
func MountRO(t testing.TB, img, fstype string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping the kernel mount: not root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("skipping the kernel mount: no loop devices")
	}
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(b), "\t"+fstype+"\n") {
		t.Skipf("skipping the kernel mount: the kernel has no %s", fstype)
	}
	Require(t, "losetup", "mount", "umount")
	var out []byte
	var err error
	for try := 0; try < 5; try++ { // two tests taking the same free loop device: one retries
		if out, err = exec.Command("losetup", "--find", "--show", "--read-only", img).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
	if err != nil {
		t.Skipf("skipping the kernel mount: losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	dir := t.TempDir()
	opts := "ro"
	if fstype == "ext4" {
		opts = "ro,noload" // never replay a journal of an image under test
	}
	if out, err := exec.Command("mount", "-t", fstype, "-o", opts, dev, dir).CombinedOutput(); err != nil {
		msg := string(out)
		if strings.Contains(msg, "permission denied") || strings.Contains(msg, "must be superuser") || strings.Contains(msg, "not permitted") {
			t.Skipf("skipping the kernel mount: %s", msg)
		}
		klog, _ := exec.Command("dmesg", "--level=err,warn").CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(klog)), "\n")
		t.Fatalf("the kernel refused to mount %s (%s): %v: %s\nlast kernel messages:\n%s", img, fstype, err, msg, strings.Join(lines[max(0, len(lines)-8):], "\n"))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
