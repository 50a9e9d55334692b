package line

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/ledger"
)

// The station follows the real adb server's device list: phones attached (adb connect) are run;
// one detached and attached again after a FAIL is run again.
func TestStationFollowsADBServer(t *testing.T) {
	srv := adbtest.StartServer(t)
	r := newRig(t, 2, testline.Options{Missing: 2})
	c := newCollector()
	cfg := r.config(c)
	cfg.Sources = []Source{&ServerSource{Server: srv.Server}}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { _, err := st.Run(runCtx); done <- err }()
	for _, d := range r.sim.Devices() {
		// The first connection offers the server's key, which the phone then accepts: the
		// server lists it unauthorized a moment, then as a device.
		if _, err := srv.Connect(ctx, d.ADBAddr()); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
			t.Fatalf("adb connect %s: %v", d.ADBAddr(), err)
		}
		addr := d.ADBAddr()
		t.Cleanup(func() { srv.Disconnect(context.Background(), addr) })
	}
	wait := func(n int) {
		t.Helper()
		for len(c.of(UpdateVerdict)) < n {
			select {
			case <-c.ch:
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("waiting for %d verdicts: %+v", n, c.us)
			}
		}
	}
	wait(2)
	got := map[string]string{}
	for _, u := range c.of(UpdateVerdict) {
		got[u.Serial] = u.Verdict
	}
	if got["LINE-OK-001"] != ledger.VerdictPass || got["LINE-MISSING-002"] != ledger.VerdictFail {
		t.Fatalf("verdicts %v", got)
	}
	// Unplug the failed phone and plug it back.
	missing := r.sim.Device("LINE-MISSING-002").ADBAddr()
	if err := srv.Disconnect(ctx, missing); err != nil {
		t.Fatal(err)
	}
	for len(c.of(UpdateGone)) == 0 {
		select {
		case <-c.ch:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the detached phone was not seen going")
		}
	}
	if _, err := srv.Connect(ctx, missing); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
		t.Fatal(err)
	}
	wait(3)
	if u := c.of(UpdateVerdict)[2]; u.Serial != "LINE-MISSING-002" {
		t.Fatalf("third verdict %+v", u)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}
