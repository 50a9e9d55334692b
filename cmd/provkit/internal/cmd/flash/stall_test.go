package flash

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// TestFlashStalledDeviceTimesOut: a "phone" that accepts the connection and never answers fails
// after --timeout with an error naming it; the command does not hang.
func TestFlashStalledDeviceTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // reads, never answers
		}
	}()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "android-info.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "boot.img"), []byte("BOOT"), 0o644)
	ios, _, out, _ := iostreams.Test()
	opts := &Options{IO: ios, Firmware: dir, NoAudit: true, Jobs: 1, Timeout: 2 * time.Second, TCP: []string{ln.Addr().String()}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = flashRun(ctx, opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitDevicesFailed || !strings.Contains(out.String(), ln.Addr().String()) {
		t.Fatalf("exit %d (%v), output:\n%s", cmdutil.ExitCode(err), err, out)
	}
}
