package safeopen

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "system.img")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "ok.apk")
	os.WriteFile(reg, []byte("x"), 0o644)
	done := make(chan error, 1)
	go func() {
		f, err := Open(fifo)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("FIFO: %v, want ErrNotRegular", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
	for _, p := range []string{"/dev/zero", dir} {
		if _, err := Open(p); !errors.Is(err, ErrNotRegular) {
			t.Errorf("%s: %v, want ErrNotRegular", p, err)
		}
		if _, err := OpenImage(p); !errors.Is(err, ErrNotRegular) {
			t.Errorf("image %s: %v, want ErrNotRegular", p, err)
		}
	}
	f, err := Open(reg)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
