package adbtest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/adb"
)

// Server is a private adb server started for one test.
type Server struct {
	*adb.Server
	Port int
	Home string   // the isolated HOME; its .android holds the server's adbkey
	Env  []string // os.Environ() with HOME, ANDROID_USER_HOME and ANDROID_ADB_SERVER_PORT set
	adb  string
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartServer starts `adb -P <port> start-server` in an isolated HOME and registers its
// kill-server with t.Cleanup. It skips (or fails, in strict mode) when adb is not installed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	path := testtool.Require(t, "adb")[0]
	home := t.TempDir()
	s := &Server{Home: home, adb: path}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s.Port = FreePort(t)
		s.Env = append(os.Environ(),
			"HOME="+home,
			"ANDROID_USER_HOME="+filepath.Join(home, ".android"),
			"ANDROID_ADB_SERVER_PORT="+strconv.Itoa(s.Port),
			"ADB_MDNS=0", "ADB_LIBUSB=0", "ADB_VENDOR_KEYS=", "ANDROID_SERIAL=",
			"TMPDIR="+home, // the server's log file goes to $TMPDIR
		)
		out, err := s.run(30*time.Second, "start-server")
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		t.Logf("adb start-server on port %d: %v\n%s", s.Port, err, out)
		s.kill()
	}
	if lastErr != nil {
		t.Fatalf("starting the adb server: %v", lastErr)
	}
	t.Logf("adb server on 127.0.0.1:%d (HOME %s)", s.Port, home)
	t.Cleanup(s.kill)
	srv, err := adb.NewServer(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
	if err != nil {
		t.Fatal(err)
	}
	s.Server = srv
	return s
}

func (s *Server) kill() {
	// kill-server is what stops the forked daemon; a server that is already gone makes it fail
	// harmlessly. A server that survives it (seen when it is still starting) is killed by pid.
	s.run(15*time.Second, "kill-server")
	killStray(s.Port)
}

// Command returns the adb command line with args, aimed at this server and run in its isolated
// environment; ctx bounds it.
func (s *Server) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.adb, append([]string{"-P", strconv.Itoa(s.Port)}, args...)...)
	cmd.Env = s.Env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func (s *Server) run(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.Command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// ADB runs the adb command line against this server and returns its combined output and error.
func (s *Server) ADB(t testing.TB, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	out, err := s.run(timeout, args...)
	return string(out), err
}
