package adb_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testimage"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/sim"
)

// TestSideloadAgainstSimulator: provkit's client sideloads an OTA to a simulated phone in
// sideload mode directly and through a real adb server; the phone gets the same bytes, a corrupt
// package fails with ErrSideloadFailed, and a legacy phone is served over sideload:<size>.
func TestSideloadAgainstSimulator(t *testing.T) {
	img := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range img {
		img[i] = byte(r.UintN(256))
	}
	dir := t.TempDir()
	ota := filepath.Join(dir, "ota.zip")
	testimage.OTAZip(t, ota, testimage.FullPayload(t, map[string][]byte{"boot": img}), nil)
	pkg, _ := os.ReadFile(ota)
	sum := sha256.Sum256(pkg)
	want := hex.EncodeToString(sum[:])
	bad := bytes.Clone(pkg)
	bad[len(bad)/2] ^= 0xff // inside payload.bin: FILE_HASH no longer matches

	s := startSim(t, `
devices:
  - serial: SIDE%d
    mode: sideload
    sideload: {stay: true}
  - serial: OLD%d
    mode: sideload
    sideload: {legacy: true, stay: true}
`, nil, 4)
	devs := s.Devices()
	srv := adbtest.StartServer(t)
	links := map[string]func(t *testing.T, d *sim.Device) *adb.Device{
		"direct": func(t *testing.T, d *sim.Device) *adb.Device {
			c, err := adb.Dial(ctxT(t, 20*time.Second), d.ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}, Serial: d.Serial()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.Device()
		},
		"server": func(t *testing.T, d *sim.Device) *adb.Device {
			ctx := ctxT(t, 30*time.Second)
			if _, err := srv.Connect(ctx, d.ADBAddr()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Disconnect(context.Background(), d.ADBAddr()) })
			if _, err := srv.WaitFor(ctx, d.ADBAddr(), adb.StateSideload); err != nil {
				t.Fatal(err)
			}
			return srv.Device(d.ADBAddr())
		},
	}
	for i, name := range []string{"direct", "server"} {
		dev := links[name]
		t.Run(name, func(t *testing.T) {
			simDev, oldDev := devs[2*i], devs[2*i+1]
			d := dev(t, simDev)
			ctx := ctxT(t, 60*time.Second)
			var last adb.SideloadProgress
			res, err := d.Sideload(ctx, bytes.NewReader(pkg), int64(len(pkg)), &adb.SideloadOptions{Progress: func(p adb.SideloadProgress) { last = p }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != "DONEDONE" || res.SHA256 != want || res.Service != "sideload-host" || res.BytesServed < int64(len(pkg)) || last.Percent != 100 {
				t.Fatalf("result %+v, last progress %+v", res, last)
			}
			recs := simDev.Sideloaded()
			if len(recs) != 1 || !recs[0].OK || recs[0].SHA256 != want || int64(recs[0].Requests) != res.BlocksServed {
				t.Fatalf("device saw %+v, host %+v", recs, res)
			}

			res, err = d.Sideload(ctx, bytes.NewReader(bad), int64(len(bad)), nil)
			if !errors.Is(err, adb.ErrSideloadFailed) || res.Status != "FAILFAIL" {
				t.Fatalf("corrupt package: %v, %+v", err, res)
			}
			if recs := simDev.Sideloaded(); len(recs) != 2 || recs[1].OK || recs[1].SHA256 != res.SHA256 {
				t.Fatalf("device saw %+v", recs)
			}

			od := dev(t, oldDev)
			res, err = od.Sideload(ctx, bytes.NewReader(pkg), int64(len(pkg)), nil)
			if err != nil || res.Service != "sideload" || res.Status != "OKAY" {
				t.Fatalf("legacy: %v %+v", err, res)
			}
			if recs := oldDev.Sideloaded(); len(recs) != 1 || !recs[0].OK || recs[0].SHA256 != want {
				t.Fatalf("legacy device saw %+v", recs)
			}
		})
	}
}
