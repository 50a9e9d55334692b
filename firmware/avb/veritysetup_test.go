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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// veritysetup runs cryptsetup's veritysetup (the dm-verity reference) to build the hash tree of
// data, and returns its root digest and the tree bytes. Both use the same layout as avbtool: levels
// top first, digests padded to a power of two, salt prepended.
func veritysetup(t testing.TB, data []byte, alg string, dataBlock, hashBlock int, salt []byte) ([]byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	dataPath, hashPath := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("veritysetup", "format", dataPath, hashPath, "--no-superblock", "--format=1",
		"--hash="+alg, fmt.Sprintf("--data-block-size=%d", dataBlock), fmt.Sprintf("--hash-block-size=%d", hashBlock),
		"--salt="+hex.EncodeToString(salt))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Root hash:\s+([0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no root hash in veritysetup output:\n%s", out)
	}
	root, _ := hex.DecodeString(string(m[1]))
	tree, err := os.ReadFile(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	return root, tree
}

// TestHashtreeAgainstVeritysetup recomputes hash trees of several shapes (one to four levels, sha1,
// sha256, sha512, equal and different data/hash block sizes) and compares the root digest and every
// tree byte with veritysetup's.
func TestHashtreeAgainstVeritysetup(t *testing.T) {
	testtool.Require(t, "veritysetup")
	rng := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		alg                  string
		dataBlock, hashBlock uint32
		blocks               int
	}{
		{"sha256", 4096, 4096, 1},
		{"sha256", 4096, 4096, 300},
		{"sha1", 4096, 4096, 129},
		{"sha1", 512, 512, 3000},
		{"sha512", 4096, 1024, 700},
		{"sha256", 1024, 4096, 5000},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%d-%d-%d", c.alg, c.dataBlock, c.hashBlock, c.blocks), func(t *testing.T) {
			data := make([]byte, int(c.dataBlock)*c.blocks)
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			salt := []byte("provkit-salt-0123456789")
			root, tree := veritysetup(t, data, c.alg, int(c.dataBlock), int(c.hashBlock), salt)
			part := append(append([]byte(nil), data...), tree...)
			d := &Hashtree{ImageSize: uint64(len(data)), TreeOffset: uint64(len(data)), TreeSize: uint64(len(tree)),
				DataBlockSize: c.dataBlock, HashBlockSize: c.hashBlock, HashAlgorithm: c.alg, Salt: salt, RootDigest: root}
			if c.blocks == 1 {
				d.TreeSize = 0 // a one-block image has no tree levels; veritysetup still writes a block
			}
			res, err := VerifyHashtree(context.Background(), d, bytes.NewReader(part), int64(len(part)))
			if err != nil {
				t.Fatal(err)
			}
			if !res.RootOK {
				t.Fatalf("root %x, veritysetup %x", res.RootDigest, root)
			}
			if d.TreeSize > 0 && !res.StoredTreeOK {
				t.Fatalf("tree differs from veritysetup's at offset %d", res.FirstBadTreeOffset)
			}
			builtRoot, built, err := BuildHashtree(context.Background(), c.alg, salt, c.dataBlock, c.hashBlock, bytes.NewReader(data), uint64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(builtRoot, root) || (d.TreeSize > 0 && !bytes.Equal(built, tree)) {
				t.Fatalf("BuildHashtree: root %x (veritysetup %x), tree %d bytes (veritysetup %d)", builtRoot, root, len(built), len(tree))
			}
		})
	}
}

// BenchmarkHashtreeVsVeritysetup recomputes the hash tree of a 64 MiB partition with provkit and with
// veritysetup and reports their time ratio (provkit/veritysetup) as a metric.
func BenchmarkHashtreeVsVeritysetup(b *testing.B) {
	testtool.Require(b, "veritysetup")
	data := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	salt := []byte("bench")
	dir := b.TempDir()
	dataPath := filepath.Join(dir, "data")
	os.WriteFile(dataPath, data, 0o600)
	root, tree := veritysetup(b, data, "sha256", 4096, 4096, salt)
	part := append(data, tree...)
	d := &Hashtree{ImageSize: uint64(len(data)), TreeOffset: uint64(len(data)), TreeSize: uint64(len(tree)),
		DataBlockSize: 4096, HashBlockSize: 4096, HashAlgorithm: "sha256", Salt: salt, RootDigest: root}
	var ours, theirs time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		start := time.Now()
		res, err := VerifyHashtree(context.Background(), d, bytes.NewReader(part), int64(len(part)))
		if err != nil || !res.RootOK || !res.StoredTreeOK {
			b.Fatalf("verify: %v %+v", err, res)
		}
		ours += time.Since(start)
		start = time.Now()
		out, err := exec.Command("veritysetup", "format", dataPath, filepath.Join(dir, "hash"), "--no-superblock",
			"--hash=sha256", "--salt="+hex.EncodeToString(salt)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), hex.EncodeToString(root)) {
			b.Fatalf("veritysetup: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	b.ReportMetric(float64(ours)/float64(theirs), "provkit/veritysetup")
}
