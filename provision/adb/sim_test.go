package adb_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/sim"
)

// startSim starts n simulated devices from a scenario document.
func startSim(t *testing.T, yamlDoc string, apks map[string][]byte, n int) *sim.Simulator {
	t.Helper()
	dir := t.TempDir()
	for name, b := range apks {
		if err := writeFile(dir+"/"+name, b); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := sim.ParseScenario([]byte(yamlDoc), dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: n, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pubText(t *testing.T, k *rsa.PrivateKey) string {
	s, err := adb.PublicKeyText(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// simLinks reaches a simulated device directly and through a real adb server.
func simLinks(t *testing.T) []struct {
	name string
	dev  func(t *testing.T, d *sim.Device) *adb.Device
} {
	srv := adbtest.StartServer(t)
	return []struct {
		name string
		dev  func(t *testing.T, d *sim.Device) *adb.Device
	}{
		{"direct", func(t *testing.T, d *sim.Device) *adb.Device {
			c, err := adb.Dial(ctxT(t, 20*time.Second), d.ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}, Serial: d.Serial()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.Device()
		}},
		{"server", func(t *testing.T, d *sim.Device) *adb.Device {
			ctx := ctxT(t, 30*time.Second)
			// A device that asks its user about a new key makes the server report "failed to
			// authenticate" at first; it stays attached, and turns "device" once accepted.
			if _, err := srv.Connect(ctx, d.ADBAddr()); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Disconnect(context.Background(), d.ADBAddr()) })
			if _, err := srv.WaitFor(ctx, d.ADBAddr()); err != nil {
				t.Fatal(err)
			}
			return srv.Device(d.ADBAddr())
		}},
	}
}

func TestAgainstSimulator(t *testing.T) {
	testtoolAAPT(t)
	apk := testapk.Build(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 25, Permissions: []string{"android.permission.POST_NOTIFICATIONS"}})
	other := testapk.Build(t, testapk.Spec{Package: "org.example.extra", VersionCode: 3})
	s := startSim(t, `
apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - serial: SIMA
    android: 14
    packages:
      - name: ru.oneme.app
        apk: messenger.apk
        system: /product/app/Messenger
    files:
      - path: /sdcard/hello.txt
        content: "hello from the simulator\n"
`, map[string][]byte{"messenger.apk": apk}, 1)
	d0 := s.Devices()[0]
	for _, l := range simLinks(t) {
		t.Run(l.name, func(t *testing.T) {
			d := l.dev(t, d0)
			ctx := ctxT(t, 60*time.Second)
			fp, err := d.GetProp(ctx, "ro.build.fingerprint")
			if err != nil || !strings.HasPrefix(fp, "provkit/") {
				t.Fatalf("fingerprint: %q %v", fp, err)
			}
			props, err := d.GetProps(ctx)
			if err != nil || props["ro.build.fingerprint"] != fp {
				t.Fatalf("GetProps: %d props, %v", len(props), err)
			}
			r, err := d.Shell(ctx, "pm path ru.oneme.app")
			if err != nil || r.ExitCode != 0 || string(r.Stdout) != "package:/product/app/Messenger/Messenger.apk\n" {
				t.Fatalf("pm path: %+v %v", r, err)
			}
			r, err = d.Shell(ctx, "nosuchcmd")
			if err != nil || r.ExitCode != 127 || len(r.Stdout) != 0 || !strings.Contains(string(r.Stderr), "nosuchcmd") {
				t.Fatalf("an unknown command: %+v %v", r, err)
			}
			// The device's digest of the APK matches the bytes pulled.
			var pulled bytes.Buffer
			if _, err := d.Pull(ctx, "/product/app/Messenger/Messenger.apk", &pulled); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(pulled.Bytes())
			out, err := d.Run(ctx, "sha256sum /product/app/Messenger/Messenger.apk")
			if err != nil || !strings.HasPrefix(string(out), hex.EncodeToString(sum[:])) || !bytes.Equal(pulled.Bytes(), apk) {
				t.Fatalf("sha256sum %q vs pulled %x: %v", out, sum, err)
			}
			fi, err := d.Stat(ctx, "/product/app/Messenger/Messenger.apk")
			if err != nil || fi.Size != int64(len(apk)) || !fi.Mode.IsRegular() {
				t.Fatalf("Stat: %+v %v", fi, err)
			}
			ents, err := d.List(ctx, "/product/app/Messenger")
			if err != nil || len(ents) != 1 || ents[0].Name != "Messenger.apk" {
				t.Fatalf("List: %+v %v", ents, err)
			}
			if _, err := d.Stat(ctx, "/sdcard/absent"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat of a missing file: %v", err)
			}
			_, err = d.Pull(ctx, "/sdcard/absent", &bytes.Buffer{})
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/sdcard/absent") || !strings.Contains(err.Error(), d.Serial()) {
				t.Fatalf("Pull of a missing file: %v", err)
			}
			payload := []byte(fmt.Sprintf("pushed over %s\n", l.name))
			if _, err := d.Push(ctx, bytes.NewReader(payload), "/sdcard/Download/p.txt", 0o644, time.Now()); err != nil {
				t.Fatal(err)
			}
			if out, err := d.Run(ctx, "cat /sdcard/Download/p.txt"); err != nil || !bytes.Equal(out, payload) {
				t.Fatalf("cat of a pushed file: %q %v", out, err)
			}
			for _, m := range []adb.InstallMethod{adb.InstallAbb, adb.InstallCmd, adb.InstallPush} {
				if _, err := d.Install(ctx, bytes.NewReader(other), int64(len(other)), adb.InstallOptions{Replace: true, Method: m}); err != nil {
					t.Fatalf("Install by %s: %v", m, err)
				}
			}
			if out, err := d.Run(ctx, "pm path org.example.extra"); err != nil || !strings.HasPrefix(string(out), "package:/data/app/") {
				t.Fatalf("pm path after install: %q %v", out, err)
			}
			garbage := []byte("not an apk at all")
			_, err = d.Install(ctx, bytes.NewReader(garbage), int64(len(garbage)), adb.InstallOptions{})
			var ie *adb.InstallError
			if !errors.As(err, &ie) || !strings.HasPrefix(ie.Code, "INSTALL_") {
				t.Fatalf("Install of garbage: %v", err)
			}
			// The legacy shell: path is covered against the test peer (a real /bin/sh); the
			// simulator's shell has no "( )" subshells or "$?", which the exit-status marker needs.
		})
	}
}

func TestSimulatorAuth(t *testing.T) {
	key := hostKey(t)
	t.Run("refused", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMR, android: 13, auth: refuse}]\n", nil, 1)
		_, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{key}, AuthWait: 500 * time.Millisecond, Serial: "SIMR"})
		if !errors.Is(err, adb.ErrUnauthorized) || !strings.Contains(err.Error(), "SIMR (unauthorized)") {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("listed key", func(t *testing.T) {
		s := startSim(t, fmt.Sprintf("devices: [{serial: SIMK, android: 12, auth: keys, authorizedKeys: [%q]}]\n", pubText(t, key)), nil, 1)
		c, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{strangerKey(t), key}})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("first use accepts the offered key", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMY, android: 15, auth: any}]\n", nil, 1)
		for i := range 2 { // the second time, the signature alone is enough
			c, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{key}})
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			c.Close()
		}
	})
}

func TestSimulatorFaults(t *testing.T) {
	key := hostKey(t)
	opts := func(serial string) *adb.DialOptions {
		return &adb.DialOptions{Keys: []*rsa.PrivateKey{key}, Serial: serial}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	t.Run("offline", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMO, android: 14, faults: {offline: true}}]\n", nil, 1)
		_, err := adb.Dial(ctxT(t, 500*time.Millisecond), s.Devices()[0].ADBAddr(), opts("SIMO"))
		if !errors.Is(err, adb.ErrOffline) || !strings.Contains(err.Error(), "SIMO (offline)") {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("dropped mid-pull", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMD, android: 14, files: [{path: /sdcard/big.bin, from: big.bin}], faults: {dropAfterBytes: 300K}}]\n",
			map[string][]byte{"big.bin": big}, 1)
		c, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), opts("SIMD"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var perr error
		within(t, 10*time.Second, "Pull from a device that drops", func() {
			_, perr = c.Device().Pull(ctxT(t, 20*time.Second), "/sdcard/big.bin", &bytes.Buffer{})
		})
		if !errors.Is(perr, adb.ErrClosed) || !strings.Contains(perr.Error(), "SIMD") || !strings.Contains(perr.Error(), "/sdcard/big.bin") {
			t.Fatalf("Pull: %v", perr)
		}
	})
	t.Run("dropped on a command", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMC, android: 14, faults: {dropOnCommand: sha256sum}}]\n", nil, 1)
		c, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), opts("SIMC"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Device().Shell(ctxT(t, 10*time.Second), "sha256sum /system/build.prop")
		if !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), "SIMC") {
			t.Fatalf("Shell: %v", err)
		}
	})
	t.Run("slow link", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMS, android: 14, files: [{path: /sdcard/big.bin, from: big.bin}], faults: {bytesPerSecond: 256K}}]\n",
			map[string][]byte{"big.bin": big}, 1)
		c, err := adb.Dial(ctxT(t, 10*time.Second), s.Devices()[0].ADBAddr(), opts("SIMS"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var perr error
		within(t, 5*time.Second, "Pull on a slow link past its deadline", func() {
			_, perr = c.Device().Pull(ctxT(t, 500*time.Millisecond), "/sdcard/big.bin", &bytes.Buffer{})
		})
		if !errors.Is(perr, context.DeadlineExceeded) || !strings.Contains(perr.Error(), "SIMS") {
			t.Fatalf("Pull: %v", perr)
		}
	})
	t.Run("reboot", func(t *testing.T) {
		s := startSim(t, "devices: [{serial: SIMB, android: 14, faults: {rebootDelay: 300ms}}]\n", nil, 1)
		sd := s.Devices()[0]
		c, err := adb.Dial(ctxT(t, 10*time.Second), sd.ADBAddr(), opts("SIMB"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Device().Reboot(ctxT(t, 10*time.Second), adb.RebootSystem); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the connection outlived the reboot")
		}
		if _, err := c.Device().Shell(ctxT(t, 5*time.Second), "true"); !errors.Is(err, adb.ErrClosed) || !strings.Contains(err.Error(), "SIMB (gone)") {
			t.Fatalf("a command after the reboot: %v", err)
		}
		// The device comes back: dial again until it answers.
		deadline := time.Now().Add(15 * time.Second)
		for {
			c2, err := adb.Dial(ctxT(t, 2*time.Second), sd.ADBAddr(), opts("SIMB"))
			if err == nil {
				c2.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the device did not come back: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if sd.Reboots() != 1 {
			t.Fatalf("the simulator counted %d reboots", sd.Reboots())
		}
	})
}

func startSimB(b *testing.B, doc, dir string) *sim.Device {
	b.Helper()
	sc, err := sim.ParseScenario([]byte(doc), dir)
	if err != nil {
		b.Fatal(err)
	}
	s, err := sim.Start(context.Background(), sim.Options{Devices: 1, Scenario: sc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s.Devices()[0]
}

// TestManyDevicesAtOnce drives eight simulated devices concurrently through one Server and eight
// direct connections, several operations per device in parallel, as a factory station does.
func TestManyDevicesAtOnce(t *testing.T) {
	const n = 8
	blob := bytes.Repeat([]byte("factory line "), 40000)
	s := startSim(t, "devices: [{serial: 'LINE%02d', android: 14, auth: none, files: [{path: /sdcard/blob, from: blob}]}]\n", map[string][]byte{"blob": blob}, n)
	srv := adbtest.StartServer(t)
	ctx := ctxT(t, 120*time.Second)
	var devs []*adb.Device
	for _, sd := range s.Devices() {
		if _, err := srv.Connect(ctx, sd.ADBAddr()); err != nil {
			t.Fatal(err)
		}
		c, err := adb.Dial(ctx, sd.ADBAddr(), &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}, Serial: sd.Serial()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		devs = append(devs, c.Device())
	}
	for _, sd := range s.Devices() {
		if _, err := srv.WaitFor(ctx, sd.ADBAddr()); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, srv.Device(sd.ADBAddr()))
	}
	listed, err := srv.Devices(ctx)
	if err != nil || len(listed) != n {
		t.Fatalf("the server lists %d devices (%v), want %d", len(listed), err, n)
	}
	errs := make(chan error, 4*len(devs))
	var wg sync.WaitGroup
	for i, d := range devs {
		for job := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch job {
				case 0:
					var b bytes.Buffer
					if _, err := d.Pull(ctx, "/sdcard/blob", &b); err != nil || !bytes.Equal(b.Bytes(), blob) {
						errs <- fmt.Errorf("device %d (%s) pull: %v", i, d.Serial(), err)
					}
				case 1:
					want := s.Devices()[i%n].Serial()
					if v, err := d.GetProp(ctx, "ro.serialno"); err != nil || v != want {
						errs <- fmt.Errorf("device %d (%s) ro.serialno %q, want %q: %v", i, d.Serial(), v, want, err)
					}
				case 2:
					if out, err := d.Run(ctx, "echo "+d.Serial()); err != nil || strings.TrimSpace(string(out)) != d.Serial() {
						errs <- fmt.Errorf("device %d shell: %q %v", i, out, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
