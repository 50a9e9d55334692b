package adb_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testimage"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
)

// BenchmarkPull pulls a 16 MiB file from a simulated device three ways: provkit over a direct
// connection, provkit through the adb server, and the adb program itself (the reference).
// scripts/bench-adb.sh prints the ratios.
func BenchmarkPull(b *testing.B) {
	const size = 16 << 20
	data := bytes.Repeat([]byte("provkit pull benchmark data...\n"), size/31+1)[:size]
	dir := b.TempDir()
	if err := writeFile(filepath.Join(dir, "big.bin"), data); err != nil {
		b.Fatal(err)
	}
	s := startSimB(b, "devices: [{serial: BENCH, android: 14, auth: none, files: [{path: /sdcard/big.bin, from: big.bin}]}]\n", dir)
	addr := s.ADBAddr()
	srv := adbtest.StartServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := srv.Connect(ctx, addr); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
		b.Fatal(err)
	}
	if _, err := srv.WaitFor(ctx, addr); err != nil {
		b.Fatal(err)
	}
	pull := func(b *testing.B, d *adb.Device) {
		b.SetBytes(size)
		for b.Loop() {
			n, err := d.Pull(ctx, "/sdcard/big.bin", io.Discard)
			if err != nil || n != size {
				b.Fatalf("pulled %d bytes: %v", n, err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		c, err := adb.Dial(ctx, addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(b)}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pull(b, c.Device())
	})
	b.Run("server", func(b *testing.B) { pull(b, srv.Device(addr)) })
	b.Run("adb-cli", func(b *testing.B) {
		b.SetBytes(size)
		out := filepath.Join(b.TempDir(), "out.bin")
		for b.Loop() {
			if msg, err := srv.ADB(b, 5*time.Minute, "-s", addr, "pull", "/sdcard/big.bin", out); err != nil {
				b.Fatalf("adb pull: %v\n%s", err, msg)
			}
		}
	})
}

// BenchmarkSideload sideloads a 16 MiB package (a non-A/B zip: update-binary and a stored filler)
// to a simulated phone in sideload mode: provkit direct, provkit through the adb server, and
// "adb sideload" itself.
func BenchmarkSideload(b *testing.B) {
	dir := b.TempDir()
	pkgPath := filepath.Join(dir, "update.zip")
	filler := bytes.Repeat([]byte("provkit sideload benchmark....\n"), (16<<20)/31)
	testimage.Zip(b, pkgPath, []testimage.ZipEntry{
		{Name: "META-INF/com/google/android/update-binary", Data: []byte("#!/sbin/sh\n")},
		{Name: "filler.bin", Data: filler},
	})
	pkg := testimage.Read(b, pkgPath)
	s := startSimB(b, "devices: [{serial: BENCH, auth: none, mode: sideload, sideload: {stay: true}}]\n", dir)
	addr := s.ADBAddr()
	srv := adbtest.StartServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := srv.Connect(ctx, addr); err != nil && !errors.Is(err, adb.ErrUnauthorized) {
		b.Fatal(err)
	}
	if _, err := srv.WaitFor(ctx, addr, adb.StateSideload); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, d *adb.Device) {
		b.SetBytes(int64(len(pkg)))
		for b.Loop() {
			if r, err := d.Sideload(ctx, bytes.NewReader(pkg), int64(len(pkg)), nil); err != nil || r.Status != "DONEDONE" {
				b.Fatalf("sideload: %v %+v", err, r)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		c, err := adb.Dial(ctx, addr, &adb.DialOptions{Keys: []*rsa.PrivateKey{hostKey(b)}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c.Device())
	})
	b.Run("server", func(b *testing.B) { run(b, srv.Device(addr)) })
	b.Run("adb-cli", func(b *testing.B) {
		b.SetBytes(int64(len(pkg)))
		for b.Loop() {
			if msg, err := srv.ADB(b, 5*time.Minute, "-s", addr, "sideload", pkgPath); err != nil {
				b.Fatalf("adb sideload: %v\n%s", err, msg)
			}
		}
	})
}
