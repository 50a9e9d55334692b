package avb

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// TestFECAgainstVeritysetup builds FEC over data + hash tree with veritysetup (cryptsetup's
// dm-verity FEC, the kernel's format that libfec and update_engine also produce) and compares every
// byte with BuildFEC.
func TestFECAgainstVeritysetup(t *testing.T) {
	testtool.Require(t, "veritysetup")
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct{ blocks, roots int }{{1, 2}, {253, 2}, {600, 2}, {1000, 8}} {
		t.Run(fmt.Sprintf("%d-blocks-%d-roots", c.blocks, c.roots), func(t *testing.T) {
			dir := t.TempDir()
			data := make([]byte, c.blocks*4096)
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			dp, hp, fp := filepath.Join(dir, "data"), filepath.Join(dir, "hash"), filepath.Join(dir, "fec")
			os.WriteFile(dp, data, 0o600)
			out, err := exec.Command("veritysetup", "format", dp, hp, "--no-superblock", "--hash=sha256",
				"--salt="+hex.EncodeToString([]byte("s")), "--fec-device="+fp, fmt.Sprintf("--fec-roots=%d", c.roots)).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup: %v\n%s", err, out)
			}
			hash, _ := os.ReadFile(hp)
			want, _ := os.ReadFile(fp)
			all := append(append([]byte(nil), data...), hash...)
			got, err := BuildFEC(context.Background(), bytes.NewReader(all), uint64(len(all)), c.roots, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || !bytes.Equal(got, want) {
				n := 0
				for n < min(len(got), len(want)) && got[n] == want[n] {
					n++
				}
				t.Fatalf("FEC: %d bytes, veritysetup %d; first difference at %d", len(got), len(want), n)
			}
		})
	}
}

// BenchmarkFECVsVeritysetup builds the FEC (2 roots) of a 32 MiB partition with provkit and with
// veritysetup --fec-device, and reports the time ratio provkit/veritysetup. veritysetup's time also
// includes building the hash tree.
func BenchmarkFECVsVeritysetup(b *testing.B) {
	testtool.Require(b, "veritysetup")
	data := make([]byte, 32<<20)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	dir := b.TempDir()
	dp := filepath.Join(dir, "data")
	os.WriteFile(dp, data, 0o600)
	var ours, theirs time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		start := time.Now()
		if _, err := BuildFEC(context.Background(), bytes.NewReader(data), uint64(len(data)), 2, 4096); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		start = time.Now()
		if out, err := exec.Command("veritysetup", "format", dp, filepath.Join(dir, "hash"), "--no-superblock",
			"--fec-device="+filepath.Join(dir, "fec"), "--fec-roots=2").CombinedOutput(); err != nil {
			b.Fatalf("veritysetup: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	b.ReportMetric(float64(ours)/float64(theirs), "provkit/veritysetup")
}

// TestHashtreeDescriptorWithFEC verifies a partition laid out as avbtool does (data, tree, FEC), with
// the tree and FEC made by veritysetup, and notices a changed FEC byte.
func TestHashtreeDescriptorWithFEC(t *testing.T) {
	testtool.Require(t, "veritysetup")
	dir := t.TempDir()
	data := bytes.Repeat([]byte("provkit verity "), 300*4096/15+1)[:300*4096]
	dp, hp, fp := filepath.Join(dir, "data"), filepath.Join(dir, "hash"), filepath.Join(dir, "fec")
	os.WriteFile(dp, data, 0o600)
	salt := []byte("salty")
	out, err := exec.Command("veritysetup", "format", dp, hp, "--no-superblock", "--hash=sha256",
		"--salt="+hex.EncodeToString(salt), "--fec-device="+fp, "--fec-roots=2").CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup: %v\n%s", err, out)
	}
	tree, _ := os.ReadFile(hp)
	fec, _ := os.ReadFile(fp)
	part := append(append(append([]byte(nil), data...), tree...), fec...)
	root, _, err := BuildHashtree(context.Background(), "sha256", salt, 4096, 4096, bytes.NewReader(data), uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	d := &Hashtree{ImageSize: uint64(len(data)), TreeOffset: uint64(len(data)), TreeSize: uint64(len(tree)),
		DataBlockSize: 4096, HashBlockSize: 4096, FECNumRoots: 2, FECOffset: uint64(len(data) + len(tree)), FECSize: uint64(len(fec)),
		HashAlgorithm: "sha256", Salt: salt, RootDigest: root}
	res, err := VerifyHashtree(context.Background(), d, bytes.NewReader(part), int64(len(part)))
	if err != nil || !res.RootOK || !res.StoredTreeOK {
		t.Fatalf("verify: %+v %v", res, err)
	}
	if err := VerifyFEC(context.Background(), d, bytes.NewReader(part), int64(len(part))); err != nil {
		t.Fatalf("FEC: %v", err)
	}
	part[len(part)-5] ^= 1
	err = VerifyFEC(context.Background(), d, bytes.NewReader(part), int64(len(part)))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(len(part)-5)) {
		t.Fatalf("changed FEC: %v", err)
	}
	if res, _ := VerifyHashtree(context.Background(), d, bytes.NewReader(part), int64(len(part))); !res.RootOK || !res.StoredTreeOK {
		t.Fatalf("a changed FEC byte must not fail the tree: %+v", res)
	}
}
