package fastboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// fakeDevice is a minimal fastboot TCP device for client tests: it records downloads and flashes
// and can be told to misbehave. The simulator in provision/sim is the full one.
type fakeDevice struct {
	t         *testing.T
	ln        net.Listener
	vars      map[string]string
	maxDL     int64
	dropAt    int64         // close the connection after receiving this many download bytes (0: never)
	stall     time.Duration // wait this long before answering each command
	handshake string

	mu      sync.Mutex
	flashed map[string][][]byte // partition -> the downloads flashed to it, in order
	cmds    []string
	wg      sync.WaitGroup
}

func newFakeDevice(t *testing.T) *fakeDevice {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDevice{t: t, ln: ln, handshake: "FB01", flashed: map[string][][]byte{},
		vars: map[string]string{"product": "provkit_sim", "serialno": "SIM0001", "current-slot": "a"}}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() { ln.Close(); d.wg.Wait() })
	return d
}

func (d *fakeDevice) addr() string { return d.ln.Addr().String() }

func (d *fakeDevice) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			d.session(c)
		}()
	}
}

func send(c net.Conn, s string) error {
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(len(s)))
	_, err := c.Write(append(h[:], s...))
	return err
}

func recv(c net.Conn) ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint64(h[:])
	if n > 16<<20 {
		return nil, fmt.Errorf("packet of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

func (d *fakeDevice) session(c net.Conn) {
	var hs [4]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil || string(hs[:2]) != "FB" {
		return
	}
	if _, err := c.Write([]byte(d.handshake)); err != nil {
		return
	}
	var download []byte
	for {
		p, err := recv(c)
		if err != nil {
			return
		}
		cmd := string(p)
		d.mu.Lock()
		d.cmds = append(d.cmds, cmd)
		d.mu.Unlock()
		if d.stall > 0 {
			time.Sleep(d.stall)
		}
		name, arg, _ := strings.Cut(cmd, ":")
		switch name {
		case "getvar":
			switch {
			case arg == "all":
				for k, v := range d.vars {
					send(c, "INFO"+k+":"+v)
				}
				send(c, "OKAY")
			case arg == "max-download-size" && d.maxDL > 0:
				send(c, fmt.Sprintf("OKAY0x%08x", d.maxDL))
			case d.vars[arg] != "":
				send(c, "OKAY"+d.vars[arg])
			default:
				send(c, "FAILGetVar Variable Not found")
			}
		case "download":
			var n int64
			fmt.Sscanf(arg, "%08x", &n)
			if d.maxDL > 0 && n > d.maxDL {
				send(c, "FAILdata too large")
				continue
			}
			send(c, fmt.Sprintf("DATA%08x", n))
			download = download[:0]
			for int64(len(download)) < n {
				p, err := recv(c)
				if err != nil {
					return
				}
				download = append(download, p...)
				if d.dropAt > 0 && int64(len(download)) >= d.dropAt {
					return
				}
			}
			send(c, "OKAY")
		case "flash":
			send(c, "INFOwriting '"+arg+"'...")
			if arg == "locked" {
				send(c, "FAILpartition is locked")
				continue
			}
			d.mu.Lock()
			d.flashed[arg] = append(d.flashed[arg], append([]byte(nil), download...))
			d.mu.Unlock()
			send(c, "OKAY")
		case "erase", "set_active":
			if arg == "c" {
				send(c, "FAILInvalid slot")
				continue
			}
			send(c, "OKAY")
		case "reboot", "reboot-bootloader", "reboot-fastboot", "reboot-recovery":
			send(c, "OKAY")
			return
		default:
			send(c, "FAILunknown command")
		}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClientCommands(t *testing.T) {
	dev := newFakeDevice(t)
	ctx := ctxT(t, 30*time.Second)
	c, err := Dial(ctx, "tcp:"+dev.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.GetVar(ctx, "product"); err != nil || v != "provkit_sim" {
		t.Fatalf("getvar product: %q %v", v, err)
	}
	_, err = c.GetVar(ctx, "nope")
	var fe *FailError
	if !errors.As(err, &fe) || fe.Message != "GetVar Variable Not found" || !strings.Contains(err.Error(), dev.addr()) {
		t.Fatalf("getvar of an unknown variable: %v", err)
	}
	all, err := c.GetVarAll(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("getvar all: %v %v", all, err)
	}
	var infos []string
	c.Progress = func(kind, msg string) { infos = append(infos, kind+":"+msg) }
	img := bytes.Repeat([]byte("provkit!"), 5000)
	if err := c.Flash(ctx, "boot_a", bytes.NewReader(img), int64(len(img)), FlashOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := dev.flashed["boot_a"]; len(got) != 1 || !bytes.Equal(got[0], img) {
		t.Fatalf("device got %d flashes of boot_a", len(got))
	}
	if len(infos) != 1 || infos[0] != "info:writing 'boot_a'..." {
		t.Fatalf("progress: %q", infos)
	}
	if err := c.Flash(ctx, "locked", bytes.NewReader(img), int64(len(img)), FlashOptions{}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "partition is locked") {
		t.Fatalf("flash refused: %v", err)
	}
	if err := c.Erase(ctx, "userdata"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetActive(ctx, "_b"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetActive(ctx, "c"); err == nil || !strings.Contains(err.Error(), "Invalid slot") {
		t.Fatalf("set_active c: %v", err)
	}
	if err := c.Erase(ctx, "bad name;reboot"); err == nil {
		t.Fatal("a partition name with a semicolon was sent")
	}
	if err := c.Reboot(ctx, RebootBootloader); err != nil {
		t.Fatal(err)
	}
	want := []string{"getvar:product", "getvar:nope", "getvar:all", "getvar:max-download-size", "download:00009c40", "flash:boot_a",
		"getvar:max-download-size", "download:00009c40", "flash:locked", "erase:userdata", "set_active:b", "set_active:c", "reboot-bootloader"}
	if strings.Join(dev.cmds, " ") != strings.Join(want, " ") {
		t.Fatalf("commands:\n got %q\nwant %q", dev.cmds, want)
	}
}

// TestFlashSplitsToMaxDownloadSize flashes a sparse image four times the device's limit and checks
// with simg2img that what the device received, applied in order, is the image.
func TestFlashSplitsToMaxDownloadSize(t *testing.T) {
	tools := testtool.Require(t, "img2simg", "simg2img")
	dir := t.TempDir()
	raw := testImage(200, 0)
	rawPath, simgPath := filepath.Join(dir, "a.img"), filepath.Join(dir, "a.simg")
	os.WriteFile(rawPath, raw, 0o644)
	runTool(t, tools[0], rawPath, simgPath)
	simg, _ := os.ReadFile(simgPath)

	dev := newFakeDevice(t)
	dev.maxDL = int64(len(simg)/4 + 1)
	ctx := ctxT(t, 30*time.Second)
	c, err := Dial(ctx, dev.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pieces := 0
	if err := c.Flash(ctx, "system_a", bytes.NewReader(simg), int64(len(simg)), FlashOptions{OnPiece: func(i, n int, size int64) { pieces = n }}); err != nil {
		t.Fatal(err)
	}
	got := dev.flashed["system_a"]
	if len(got) != pieces || pieces < 4 {
		t.Fatalf("%d flashes for %d planned pieces", len(got), pieces)
	}
	var files []string
	for i, p := range got {
		if int64(len(p)) > dev.maxDL {
			t.Fatalf("piece %d is %d bytes, over max-download-size %d", i, len(p), dev.maxDL)
		}
		f := filepath.Join(dir, fmt.Sprintf("p%d", i))
		os.WriteFile(f, p, 0o644)
		files = append(files, f)
	}
	out := filepath.Join(dir, "out.img")
	runTool(t, tools[1], append(files, out)...)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, raw) {
		t.Fatal("the pieces the device received do not rebuild the image")
	}
}

func TestClientFaults(t *testing.T) {
	t.Run("bad handshake", func(t *testing.T) {
		dev := newFakeDevice(t)
		dev.handshake = "HTTP"
		_, err := Dial(ctxT(t, 10*time.Second), dev.addr())
		if err == nil || !strings.Contains(err.Error(), "not a fastboot TCP device") || !strings.Contains(err.Error(), dev.addr()) {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if _, err := Dial(ctxT(t, 10*time.Second), addr); err == nil || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Dial: %v", err)
		}
	})
	t.Run("dropped mid-download", func(t *testing.T) {
		dev := newFakeDevice(t)
		dev.dropAt = 100 << 10
		ctx := ctxT(t, 20*time.Second)
		c, err := Dial(ctx, dev.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.ChunkSize = 32 << 10
		img := make([]byte, 1<<20)
		err = c.Flash(ctx, "boot", bytes.NewReader(img), int64(len(img)), FlashOptions{MaxDownload: 4 << 20})
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), dev.addr()) {
			t.Fatalf("Flash over a dropped link: %v", err)
		}
		if _, err := c.GetVar(ctx, "product"); err == nil {
			t.Fatal("a broken session accepted another command")
		}
	})
	t.Run("slow device times out", func(t *testing.T) {
		dev := newFakeDevice(t)
		dev.stall = 2 * time.Second
		c, err := Dial(ctxT(t, 10*time.Second), dev.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err = c.GetVar(ctx, "product")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), dev.addr()) {
			t.Fatalf("GetVar on a stalled device: %v", err)
		}
	})
}

func TestParseReplyAndSize(t *testing.T) {
	for in, want := range map[string]string{"OKAY0.4": "OKAY|0.4", "FAILno\x00": "FAIL|no", "DATA00001000": "DATA|00001000", "INFO": "INFO|"} {
		k, m, err := ParseReply([]byte(in))
		if err != nil || k+"|"+m != want {
			t.Errorf("ParseReply(%q) = %q %q %v", in, k, m, err)
		}
	}
	for _, bad := range []string{"OK", "WHAT is this"} {
		if _, _, err := ParseReply([]byte(bad)); err == nil {
			t.Errorf("ParseReply(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int64{"0x10000000": 1 << 28, "268435456": 1 << 28, "": 0, "0X20": 32} {
		if n, err := ParseSize(in); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d %v", in, n, err)
		}
	}
	if _, err := ParseSize("lots"); err == nil {
		t.Error("ParseSize(lots) accepted")
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"OKAY0.4", "FAILUnknown variable", "DATA00001234", "INFOerasing", "TEXTx", "DATAzzzzzzzz", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, m, err := ParseReply(b)
		if err != nil {
			return
		}
		if len(k) != 4 || len(m) > len(b)-4 {
			t.Fatalf("ParseReply(%q) = %q %q", b, k, m)
		}
		ParseHandshake(b)
		ParseSize(string(b))
	})
}
