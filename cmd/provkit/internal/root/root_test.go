package root

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

// TestRunInterrupted: after Ctrl-C (a cancelled context) provkit exits 130 and says
// "interrupted", never Go's bare "context canceled".
func TestRunInterrupted(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "raw.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ios, _, out, errOut := iostreams.Test()
	code := Run(ctx, ios, []string{"image", "sparse", raw, raw + ".simg"})
	if code != cmdutil.ExitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, cmdutil.ExitInterrupted, errOut)
	}
	msg := errOut.String()
	if !strings.HasPrefix(msg, "provkit: interrupted") || strings.Contains(msg, "context canceled") {
		t.Errorf("stderr %q: want 'provkit: interrupted...' without 'context canceled'", msg)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out)
	}
	if _, err := os.Stat(raw + ".simg"); !os.IsNotExist(err) {
		t.Errorf("output left behind: %v", err)
	}
}

func TestMessage(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(live)
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{done, context.Canceled, "interrupted"},
		{done, wrap("reading x: %w", context.Canceled), "interrupted: reading x"},
		{done, wrap("check interrupted; the devices that finished are reported: %w", context.Canceled), "check interrupted; the devices that finished are reported"},
		{done, wrap("%w: %w", context.Canceled, os.ErrNotExist), "interrupted: file does not exist"},
		{live, wrap("reading x: %w", context.Canceled), "reading x: context canceled"},
		{live, os.ErrNotExist, "file does not exist"},
	} {
		if got := message(c.ctx, c.err); got != c.want {
			t.Errorf("message(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func wrap(format string, a ...any) error { return fmt.Errorf(format, a...) }
