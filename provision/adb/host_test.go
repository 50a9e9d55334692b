package adb_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestServerAgainstRealADB(t *testing.T) {
	srv := adbtest.StartServer(t)
	ctx := ctxT(t, 60*time.Second)

	t.Run("version", func(t *testing.T) {
		v, err := srv.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v < 31 || v > 0xff {
			t.Fatalf("version %d is not a plausible adb server version", v)
		}
	})
	t.Run("devices empty", func(t *testing.T) {
		devs, err := srv.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 0 {
			t.Fatalf("a fresh server lists %v", devs)
		}
	})
	t.Run("host features", func(t *testing.T) {
		f, err := srv.HostFeatures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Has(adb.FeatureShellV2) {
			t.Fatalf("the adb server does not announce shell_v2: %v", f)
		}
	})
	t.Run("connect refused", func(t *testing.T) {
		// A port with nothing listening: the server still answers OKAY, with failure text.
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(adbtest.FreePort(t)))
		_, err := srv.Connect(ctx, addr)
		if err == nil {
			t.Fatal("connecting to a closed port succeeded")
		}
		if !strings.Contains(err.Error(), "failed to connect") && !strings.Contains(err.Error(), "cannot connect") {
			t.Fatalf("error does not carry the server's reason: %v", err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Fatalf("error does not name %s: %v", addr, err)
		}
	})
	t.Run("disconnect unknown", func(t *testing.T) {
		err := srv.Disconnect(ctx, "127.0.0.1:1")
		if !errors.Is(err, adb.ErrDeviceNotFound) {
			t.Fatalf("Disconnect of an unknown device: %v, want ErrDeviceNotFound", err)
		}
	})
	t.Run("unknown serial", func(t *testing.T) {
		_, err := srv.Features(ctx, "no-such-serial")
		if !errors.Is(err, adb.ErrDeviceNotFound) || !strings.Contains(err.Error(), "no-such-serial") {
			t.Fatalf("Features: %v, want ErrDeviceNotFound naming the serial", err)
		}
		st, err := srv.State(ctx, "no-such-serial")
		if st != adb.StateGone || !errors.Is(err, adb.ErrDeviceNotFound) {
			t.Fatalf("State: %q, %v", st, err)
		}
		_, err = srv.TransportID(ctx, "no-such-serial")
		if !errors.Is(err, adb.ErrDeviceNotFound) {
			t.Fatalf("TransportID: %v", err)
		}
	})
	t.Run("track devices starts and stops", func(t *testing.T) {
		tctx, cancel := context.WithCancel(ctx)
		tr, err := srv.TrackDevices(tctx)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		for range tr.C {
			t.Fatal("an empty server sent a device event")
		}
		if !errors.Is(tr.Err(), context.Canceled) {
			t.Fatalf("tracker ended with %v, want context.Canceled", tr.Err())
		}
	})
	t.Run("wait for times out naming the state", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := srv.WaitFor(wctx, "ghost")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "ghost (gone)") {
			t.Fatalf("WaitFor: %v", err)
		}
	})
}

func TestNoServer(t *testing.T) {
	port := adbtest.FreePort(t)
	srv, err := adb.NewServer(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.Version(ctxT(t, 10*time.Second))
	if !errors.Is(err, adb.ErrNoServer) {
		t.Fatalf("Version with no server: %v, want ErrNoServer", err)
	}
	want := "no adb server on 127.0.0.1:" + strconv.Itoa(port)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "adb start-server") {
		t.Fatalf("error %q does not say %q and what to do", err, want)
	}
}

func TestServerAddrFromEnv(t *testing.T) {
	t.Setenv("ANDROID_ADB_SERVER_PORT", "15123")
	a, err := adb.ServerAddrFromEnv()
	if err != nil || a != "127.0.0.1:15123" {
		t.Fatalf("got %q, %v", a, err)
	}
	t.Setenv("ANDROID_ADB_SERVER_PORT", "")
	if a, _ := adb.ServerAddrFromEnv(); a != "127.0.0.1:5037" {
		t.Fatalf("default: %q", a)
	}
	t.Setenv("ANDROID_ADB_SERVER_PORT", "70000")
	if _, err := adb.ServerAddrFromEnv(); err == nil || !strings.Contains(err.Error(), "ANDROID_ADB_SERVER_PORT") {
		t.Fatalf("bad port accepted: %v", err)
	}
}

// TestTrackerEndsWhenTheServerDies: a tracker never hangs on a dead server.
func TestTrackerEndsWhenTheServerDies(t *testing.T) {
	srv := adbtest.StartServer(t)
	ctx := ctxT(t, 30*time.Second)
	tr, err := srv.TrackDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range tr.C {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the tracker outlived the server")
	}
	if err := tr.Err(); !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), "stopped answering") {
		t.Fatalf("tracker ended with %v", err)
	}
	// The dying server's connections and its listening socket close as its process ends, in no
	// set order: a request in that moment can still be accepted, then reset. Wait (bounded) for
	// the port to refuse; nothing may answer meanwhile.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := srv.Version(ctx)
		if errors.Is(err, adb.ErrNoServer) {
			break
		}
		if !errors.Is(err, adb.ErrClosed) || time.Now().After(deadline) {
			t.Fatalf("Version after kill: %v", err)
		}
	}
}
