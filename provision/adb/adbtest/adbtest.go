package adbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
	proc *exec.Cmd
	done chan struct{} // closed once proc has exited and been waited for
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

// ServerEnv returns os.Environ() with everything the adb program reads to find its server, key
// and log pointed at home and port, so that it never touches a developer's ~/.android or the
// server on 5037 (adb 29 reads HOME; newer versions ANDROID_USER_HOME or ANDROID_SDK_HOME).
func ServerEnv(home string, port int) []string {
	return append(os.Environ(),
		"HOME="+home,
		"ANDROID_USER_HOME="+filepath.Join(home, ".android"),
		"ANDROID_SDK_HOME="+home,
		"ANDROID_ADB_SERVER_PORT="+strconv.Itoa(port),
		"ADB_MDNS=0", "ADB_LIBUSB=0", "ADB_VENDOR_KEYS=", "ANDROID_SERIAL=",
		"TMPDIR="+home, // the server's log file goes to $TMPDIR
	)
}

// StartServer starts a private adb server in an isolated HOME and registers its shutdown with
// t.Cleanup. It skips (or fails, in strict mode) when adb is not installed.
//
// The server runs in the foreground ("adb nodaemon server") as a child of the test process rather
// than as the daemon "adb start-server" forks: a test binary that dies without running its
// cleanups (go test -timeout, an interrupt) takes its server with it instead of leaving it running.
func StartServer(t testing.TB) *Server {
	t.Helper()
	path := testtool.Require(t, "adb")[0]
	home := t.TempDir()
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		s := &Server{Home: home, adb: path, Port: FreePort(t)}
		s.Env = ServerEnv(home, s.Port)
		err := s.start(filepath.Join(home, fmt.Sprintf("adb-server-%d.log", s.Port)))
		if err == nil {
			t.Logf("adb server on 127.0.0.1:%d (HOME %s)", s.Port, home)
			t.Cleanup(s.kill)
			return s
		}
		// Most likely another process took the port between FreePort and the server's bind: stop
		// our process only, never whatever answers on that port.
		errs = append(errs, err)
		if s.proc != nil {
			s.proc.Process.Kill()
			<-s.done
		}
	}
	t.Fatalf("starting an adb server: %v", errors.Join(errs...))
	return nil
}

// start runs the server and waits (bounded) until it answers host:version.
func (s *Server) start(logPath string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.proc = exec.Command(s.adb, "-P", strconv.Itoa(s.Port), "nodaemon", "server")
	s.proc.Env = s.Env
	s.proc.Stdout, s.proc.Stderr = logf, logf
	serverProcAttr(s.proc)
	s.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		defer close(s.done)
		// Linux sends the server its parent-death signal when the thread that started it exits:
		// keep this goroutine on that thread until the server is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := s.proc.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.proc.Wait()
	}()
	if err := <-started; err != nil {
		s.proc = nil
		return fmt.Errorf("running %s: %w", s.adb, err)
	}
	// From here on s.proc is running or has exited and been waited for (s.done).
	srv, err := adb.NewServer(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
	if err != nil {
		return err
	}
	s.Server = srv
	// A generous bound: it only stops a server that never comes up from hanging the test.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := srv.Version(ctx)
		cancel()
		select {
		case <-s.done: // whatever answered, it was not this server
			return fmt.Errorf("adb server on port %d exited (%v): %s", s.Port, s.proc.ProcessState, logTail(logPath))
		default:
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("adb server on port %d not answering after 60s: %w: %s", s.Port, err, logTail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// kill stops the server at the end of the test.
func (s *Server) kill() {
	select {
	case <-s.done: // the test stopped it already (host:kill)
	default:
		// kill-server lets the server stop cleanly; a server that does not is killed.
		s.run(15*time.Second, "kill-server")
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.proc.Process.Kill()
			<-s.done
		}
	}
	// An adb command run after the server stopped starts a daemon of its own on the same port.
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
