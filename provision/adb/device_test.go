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
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
	"github.com/provkit/provkit/provision/adb/wire"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
	keyErr  error
)

// hostKey returns one RSA key shared by the tests (generating 2048-bit keys is slow).
func hostKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() { testKey, keyErr = wire.GenerateKey() })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return testKey
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// link is a way of reaching a peer: directly, or through a real adb server.
type link struct {
	name string
	dev  func(t *testing.T, p *adbtest.Peer) *adb.Device
}

func directLink() link {
	return link{"direct", func(t *testing.T, p *adbtest.Peer) *adb.Device {
		ctx := ctxT(t, 20*time.Second)
		c, err := adb.Dial(ctx, p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.Device()
	}}
}

func serverLink(srv *adbtest.Server) link {
	return link{"server", func(t *testing.T, p *adbtest.Peer) *adb.Device {
		ctx := ctxT(t, 30*time.Second)
		if _, err := srv.Connect(ctx, p.Addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Disconnect(context.Background(), p.Addr) })
		if _, err := srv.WaitFor(ctx, p.Addr); err != nil {
			t.Fatal(err)
		}
		return srv.Device(p.Addr)
	}}
}

func links(t *testing.T) []link {
	ls := []link{directLink()}
	if srv := maybeServer(t); srv != nil {
		ls = append(ls, serverLink(srv))
	}
	return ls
}

func maybeServer(t *testing.T) *adbtest.Server {
	return adbtest.StartServer(t)
}

func TestDeviceOperations(t *testing.T) {
	for _, l := range links(t) {
		t.Run(l.name, func(t *testing.T) {
			p := adbtest.StartPeer(t, adbtest.PeerOptions{Props: map[string]string{"ro.build.version.sdk": "34"}})
			d := l.dev(t, p)
			ctx := ctxT(t, 60*time.Second)
			testOperations(t, ctx, d, p)
		})
	}
}

func testOperations(t *testing.T, ctx context.Context, d *adb.Device, p *adbtest.Peer) {
	t.Run("shell v2 separates streams and keeps the exit code", func(t *testing.T) {
		r, err := d.Shell(ctx, "echo hello; echo oops >&2; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Stdout) != "hello\n" || string(r.Stderr) != "oops\n" || r.ExitCode != 3 || r.Legacy {
			t.Fatalf("got %+v", r)
		}
		if _, err := d.Run(ctx, "echo x >&2; false"); err == nil || !strings.Contains(err.Error(), "exit status 1: x") || !strings.Contains(err.Error(), d.Serial()) {
			t.Fatalf("Run of a failing command: %v", err)
		}
	})
	t.Run("shell stdin", func(t *testing.T) {
		var out bytes.Buffer
		in := randomBytes(300<<10, 1)
		code, err := d.ShellStream(ctx, "cat", adb.ShellOptions{Stdin: bytes.NewReader(in), Stdout: &out})
		if err != nil || code != 0 || !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("cat: code %d err %v, %d bytes back of %d", code, err, out.Len(), len(in))
		}
		// No stdin: the command sees end of input at once instead of hanging.
		r, err := d.Shell(ctx, "cat; echo done")
		if err != nil || string(r.Stdout) != "done\n" {
			t.Fatalf("cat without stdin: %+v %v", r, err)
		}
	})
	t.Run("legacy shell recovers the exit code", func(t *testing.T) {
		var out bytes.Buffer
		code, err := d.ShellStream(ctx, "echo hi; echo err >&2; exit 5", adb.ShellOptions{Stdout: &out, Legacy: true})
		if err != nil || code != 5 || !strings.Contains(out.String(), "hi\n") || !strings.Contains(out.String(), "err\n") || strings.Contains(out.String(), "PROVKIT") {
			t.Fatalf("legacy: code %d err %v out %q", code, err, out.String())
		}
		code, err = d.ShellStream(ctx, "echo a # a comment", adb.ShellOptions{Stdout: &out, Legacy: true})
		if err != nil || code != 0 {
			t.Fatalf("legacy with a comment: %d %v", code, err)
		}
	})
	t.Run("exec is raw", func(t *testing.T) {
		out, err := d.ExecOutput(ctx, `printf 'a\000b\r\n'`)
		if err != nil || string(out) != "a\x00b\r\n" {
			t.Fatalf("exec: %q %v", out, err)
		}
	})
	t.Run("getprop", func(t *testing.T) {
		v, err := d.GetProp(ctx, "ro.build.version.sdk")
		if err != nil || v != "34" {
			t.Fatalf("GetProp: %q %v", v, err)
		}
		props, err := d.GetProps(ctx)
		if err != nil || props["ro.product.model"] != "Peer_Device" || props["ro.build.version.sdk"] != "34" {
			t.Fatalf("GetProps: %v %v", props, err)
		}
		if _, err := d.GetProp(ctx, "x; reboot"); err == nil {
			t.Fatal("a property name with shell syntax was run")
		}
	})
	t.Run("sync push stat list pull", func(t *testing.T) {
		data := randomBytes(700<<10+123, 2)
		mtime := time.Unix(1700000000, 0)
		n, err := d.Push(ctx, bytes.NewReader(data), "/sdcard/Download/blob.bin", 0o640, mtime)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Push: %d %v", n, err)
		}
		fi, err := d.Stat(ctx, "/sdcard/Download/blob.bin")
		if err != nil || fi.Size != int64(len(data)) || fi.Mode.Perm() != 0o640 || !fi.ModTime.Equal(mtime) || fi.Name != "blob.bin" {
			t.Fatalf("Stat: %+v %v", fi, err)
		}
		ents, err := d.List(ctx, "/sdcard/Download")
		if err != nil || len(ents) != 1 || ents[0].Name != "blob.bin" || ents[0].Size != int64(len(data)) {
			t.Fatalf("List: %+v %v", ents, err)
		}
		var back bytes.Buffer
		if n, err := d.Pull(ctx, "/sdcard/Download/blob.bin", &back); err != nil || n != int64(len(data)) || !bytes.Equal(back.Bytes(), data) {
			t.Fatalf("Pull: %d %v (equal %v)", n, err, bytes.Equal(back.Bytes(), data))
		}
		local := filepath.Join(t.TempDir(), "blob.bin")
		if _, err := d.PullFile(ctx, "/sdcard/Download/blob.bin", local); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
			t.Fatal("PullFile wrote different bytes")
		}
	})
	t.Run("sync errors name the path and the device", func(t *testing.T) {
		_, err := d.Stat(ctx, "/sdcard/nope")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat of a missing file: %v", err)
		}
		local := filepath.Join(t.TempDir(), "out")
		_, err = d.PullFile(ctx, "/sdcard/nope", local)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/sdcard/nope") || !strings.Contains(err.Error(), d.Serial()) {
			t.Fatalf("Pull of a missing file: %v", err)
		}
		if _, statErr := os.Stat(local); !errors.Is(statErr, fs.ErrNotExist) {
			t.Fatal("a failed pull left a local file behind")
		}
		_, err = d.Push(ctx, strings.NewReader("x"), "/system/app/evil.apk", 0o644, time.Now())
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "/system/app/evil.apk") {
			t.Fatalf("Push to a read-only place: %v", err)
		}
	})
	t.Run("install by every method", func(t *testing.T) {
		apk := append([]byte("PK\x03\x04"), randomBytes(200<<10, 3)...)
		for _, m := range []adb.InstallMethod{adb.InstallAuto, adb.InstallAbb, adb.InstallCmd, adb.InstallPush} {
			got, err := d.Install(ctx, bytes.NewReader(apk), int64(len(apk)), adb.InstallOptions{Replace: true, Method: m})
			if err != nil {
				t.Fatalf("Install(%q): %v", m, err)
			}
			if m == adb.InstallAuto && got != adb.InstallAbb {
				t.Fatalf("auto chose %q on a device with abb_exec", got)
			}
		}
		bad := []byte("BAD APK")
		_, err := d.Install(ctx, bytes.NewReader(bad), int64(len(bad)), adb.InstallOptions{})
		var ie *adb.InstallError
		if !errors.As(err, &ie) || ie.Code != "INSTALL_PARSE_FAILED_NOT_APK" || !strings.Contains(err.Error(), d.Serial()) {
			t.Fatalf("Install of a bad APK: %v", err)
		}
	})
	t.Run("many streams at once", func(t *testing.T) {
		data := randomBytes(256<<10, 4)
		if _, err := d.Push(ctx, bytes.NewReader(data), "/sdcard/par.bin", 0o644, time.Now()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					var b bytes.Buffer
					if _, err := d.Pull(ctx, "/sdcard/par.bin", &b); err != nil || !bytes.Equal(b.Bytes(), data) {
						errs <- fmt.Errorf("pull %d: %v", i, err)
					}
					return
				}
				r, err := d.Shell(ctx, fmt.Sprintf("echo %d", i))
				if err != nil || string(r.Stdout) != fmt.Sprintf("%d\n", i) {
					errs <- fmt.Errorf("shell %d: %+v %v", i, r, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestLegacyFallbackWithoutShellV2(t *testing.T) {
	p := adbtest.StartPeer(t, adbtest.PeerOptions{Features: []string{wire.FeatureStat2}})
	d := directLink().dev(t, p)
	ctx := ctxT(t, 30*time.Second)
	r, err := d.Shell(ctx, "echo out; echo err >&2; exit 7")
	if err != nil || !r.Legacy || r.ExitCode != 7 || !strings.Contains(string(r.Stdout), "out") {
		t.Fatalf("Shell on a device without shell_v2: %+v %v", r, err)
	}
	// No abb_exec or cmd: install goes through push + pm.
	apk := []byte("PK\x03\x04 small apk")
	if m, err := d.Install(ctx, bytes.NewReader(apk), int64(len(apk)), adb.InstallOptions{}); err != nil || m != adb.InstallPush {
		t.Fatalf("Install: %q %v", m, err)
	}
	if _, err := d.ShellStream(ctx, "cat", adb.ShellOptions{Stdin: strings.NewReader("x")}); !errors.Is(err, adb.ErrNotSupported) {
		t.Fatalf("stdin over a legacy shell: %v", err)
	}
}

func TestReboot(t *testing.T) {
	p := adbtest.StartPeer(t, adbtest.PeerOptions{})
	c, err := adb.Dial(ctxT(t, 10*time.Second), p.Addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Device().Reboot(ctxT(t, 10*time.Second), adb.RebootBootloader); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection outlived the reboot")
	}
	if err := c.Device().Reboot(ctxT(t, 10*time.Second), "../etc"); err == nil {
		t.Fatal("a bad reboot target was sent")
	}
}

// TestPeerIsAcceptedByRealADB checks the test peer itself against the real adb program, so that
// what the client tests prove against it is not an artefact of a peer only provkit understands.
func TestPeerIsAcceptedByRealADB(t *testing.T) {
	srv := adbtest.StartServer(t)
	p := adbtest.StartPeer(t, adbtest.PeerOptions{})
	serverLink(srv).dev(t, p)
	out, err := srv.ADB(t, 20*time.Second, "-s", p.Addr, "shell", "echo via-real-adb; exit 4")
	if !strings.Contains(out, "via-real-adb") || err == nil || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("adb shell: %q %v", out, err)
	}
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, randomBytes(100<<10, 9), 0o644)
	if out, err := srv.ADB(t, 20*time.Second, "-s", p.Addr, "push", src, "/sdcard/f"); err != nil {
		t.Fatalf("adb push: %v\n%s", err, out)
	}
	dst := filepath.Join(t.TempDir(), "g")
	if out, err := srv.ADB(t, 20*time.Second, "-s", p.Addr, "pull", "/sdcard/f", dst); err != nil {
		t.Fatalf("adb pull: %v\n%s", err, out)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("adb push then pull through the peer changed the file")
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

func testtoolAAPT(t *testing.T) { testtool.Require(t, "aapt", "apksigner") }

// TestExecInput sends input to an exec: command that knows how much to read, over both links.
func TestExecInput(t *testing.T) {
	for _, l := range links(t) {
		t.Run(l.name, func(t *testing.T) {
			p := adbtest.StartPeer(t, adbtest.PeerOptions{})
			d := l.dev(t, p)
			var out bytes.Buffer
			in := randomBytes(100000, 11)
			err := d.Exec(ctxT(t, 20*time.Second), "head -c 100000 | sha256sum", bytes.NewReader(in), &out)
			sum := sha256.Sum256(in)
			if err != nil || !strings.HasPrefix(out.String(), hex.EncodeToString(sum[:])) {
				t.Fatalf("Exec with input: %q %v", out.String(), err)
			}
			// A command that stops reading early is not an error.
			out.Reset()
			if err := d.Exec(ctxT(t, 20*time.Second), "head -c 3", bytes.NewReader(in), &out); err != nil || !bytes.Equal(out.Bytes(), in[:3]) {
				t.Fatalf("Exec reading part of its input: %q %v", out.Bytes(), err)
			}
		})
	}
}
