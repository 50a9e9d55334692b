package sim

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/adb/adbtest"
)

// adbHarness runs the real adb program against its own adb server (adbtest.StartServer: own HOME
// so its own adbkey, own port, own TMPDIR; stopped when the test ends, or with the test binary).
type adbHarness struct {
	t    *testing.T
	adb  string
	env  []string
	home string
}

func newADB(t *testing.T) *adbHarness {
	t.Helper()
	srv := adbtest.StartServer(t)
	return &adbHarness{t: t, adb: testtool.Require(t, "adb")[0], env: srv.Env, home: srv.Home}
}

// run executes adb with args, bounded by timeout.
func (h *adbHarness) run(timeout time.Duration, args ...string) (string, string, error) {
	return h.runIn(timeout, nil, args...)
}

func (h *adbHarness) runIn(timeout time.Duration, stdin []byte, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.adb, args...)
	cmd.Env = h.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("adb %s: timed out after %v", strings.Join(args, " "), timeout)
	}
	return out.String(), errb.String(), err
}

// connect attaches a simulated device to the server and waits until it reaches want (device,
// unauthorized, offline).
func (h *adbHarness) connect(addr, want string) {
	h.t.Helper()
	out, errOut, err := h.run(30*time.Second, "connect", addr)
	// A key the device has not seen yet makes adb print "failed to authenticate" while the device
	// asks its user; the simulator's "any" mode accepts right after.
	// An offline device never finishes the handshake: adb 29 gives up after 10 s with "failed to
	// connect" but keeps listing it as offline.
	ok := strings.Contains(out, "connected to "+addr) || strings.Contains(out, "failed to authenticate to "+addr) ||
		want == "offline" && strings.Contains(out, "failed to connect to "+addr)
	if err != nil || !ok {
		h.t.Fatalf("adb connect %s: %v\n%s%s", addr, err, out, errOut)
	}
	h.waitState(addr, want, 20*time.Second)
}

func (h *adbHarness) state(serial string) string {
	out, _, _ := h.run(10*time.Second, "devices")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == serial {
			return f[1]
		}
	}
	return ""
}

func (h *adbHarness) waitState(serial, want string, timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		if got = h.state(serial); got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _, _ := h.run(10*time.Second, "devices", "-l")
	h.t.Fatalf("device %s: state %q after %v, want %q\n%s", serial, got, timeout, want, out)
}
