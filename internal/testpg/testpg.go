package testpg

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/provkit/provkit/internal/testtool"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir    string // holds data/, the socket and the log
	bin    string
	asUser []string // command prefix to run as the unprivileged user
	n      atomic.Int64
}

var (
	mu     sync.Mutex
	shared *Server
)

// BinDir finds the directory of initdb, pg_ctl and postgres: the newest
// /usr/lib/postgresql/<version>/bin, or PATH.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("pg_ctl")
	if err != nil {
		return "", fmt.Errorf("PostgreSQL is not installed (Debian package postgresql; scripts/test.sh installs it)")
	}
	return filepath.Dir(p), nil
}

// Shared returns the package's server, starting it on first use; call Stop from TestMain.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		s, err := start()
		if err != nil {
			if strings.Contains(err.Error(), "not installed") {
				testtool.Missing(tb, err.Error())
			}
			tb.Fatalf("starting PostgreSQL: %v", err)
		}
		shared = s
	}
	return shared
}

// StopShared stops the shared server if one was started (for TestMain).
func StopShared() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

func start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "provkit-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running PostgreSQL as root is refused and there is no user nobody: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running PostgreSQL as nobody: %w", err)
		}
		s.asUser = []string{runuser, "-u", "nobody", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(append([]string{}, s.asUser...), filepath.Join(bin, name))
		argv = append(argv, args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Unix socket only, in dir: no port to collide with other tests; fsync off: this server's
	// data dies with the test.
	opts := fmt.Sprintf("-k %s -c listen_addresses= -c fsync=off -c max_connections=100", dir)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "120", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return s, nil
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	argv := append(append([]string{}, s.asUser...), filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	_ = exec.Command(argv[0], argv[1:]...).Run()
	os.RemoveAll(s.dir)
}

// URL returns a postgres:// URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", db, s.dir)
}

// NewDatabase creates a fresh, empty database and returns its URL.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("creating database: %v", err)
	}
	return s.URL(name)
}

// Start starts a server of the test's own, stopped when the test ends (for packages whose
// TestMain cannot stop a shared one).
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		if strings.Contains(err.Error(), "not installed") {
			testtool.Missing(tb, err.Error())
		}
		tb.Fatalf("starting PostgreSQL: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}
