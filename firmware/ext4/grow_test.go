package ext4

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// growVariants are grown past the backup groups 1 and 3 (and 5, 7, 9 with 1 KiB blocks): a
// single 4 KiB-block group with mke2fs's defaults (resize_inode, flex_bg, metadata_csum,
// 64bit), without resize_inode, without flex_bg, with uninit_bg instead of metadata_csum, with
// neither, 32-byte descriptors, no sparse_super, and 1 KiB blocks with several groups.
var growVariants = []struct {
	name   string
	sizeMB int
	groups uint64 // groups after growing
	args   []string
}{
	{"4k-defaults", 24, 4, []string{"-t", "ext4", "-b", "4096", "-I", "256"}},
	{"4k-no-resize-inode", 24, 5, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^resize_inode"}},
	{"4k-no-flex-bg", 24, 4, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^flex_bg"}},
	{"4k-uninit-bg", 24, 4, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^metadata_csum,uninit_bg,^64bit"}},
	{"4k-no-csum", 24, 4, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^metadata_csum,^uninit_bg,^has_journal"}},
	{"4k-no-sparse-super", 24, 3, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-O", "^sparse_super,^resize_inode"}},
	{"android-nojournal", 24, 4, []string{"-t", "ext4", "-b", "4096", "-I", "256", "-m", "0", "-O", "^has_journal,metadata_csum,^64bit"}},
	{"1k-resize-inode", 10, 10, []string{"-t", "ext4", "-b", "1024", "-I", "256"}},
	{"1k-many-groups", 40, 11, []string{"-t", "ext4", "-b", "1024", "-I", "256", "-N", "800", "-O", "metadata_csum,^resize_inode"}},
}

var dumpe2fsGroup = regexp.MustCompile(`(?m)^Group \d+: `)

var dumpe2fsField = regexp.MustCompile(`(?m)^([A-Za-z ]+):\s+(\d+)\s*$`)

// superCounts reads the numeric fields of dumpe2fs -h.
func superCounts(t *testing.T, img string) map[string]uint64 {
	t.Helper()
	out := runCmd(t, "dumpe2fs", "-h", img)
	m := map[string]uint64{}
	for _, s := range dumpe2fsField.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(s[2], 10, 64)
		m[s[1]] = v
	}
	return m
}

func copySparse(t *testing.T, src, dst string) {
	t.Helper()
	runCmd(t, "cp", "--sparse=always", src, dst)
}

// TestGrowAgainstResize2fs grows images made by mke2fs into several groups, then asks the real
// tools: e2fsck -fn finds nothing, dumpe2fs -h gives the counts resize2fs gives when it grows a
// copy of the same image to the same size, every old file is unchanged, and a file too big for
// the image before fits after.
func TestGrowAgainstResize2fs(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck", "resize2fs", "dumpe2fs")
	ctx := context.Background()
	for _, v := range growVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			img := mkfsForWrite(t, dir, buildWriteTree(t, dir), v.sizeMB, v.args...)
			before := dumpSums(t, img)
			sb0 := superCounts(t, img)
			bpg := sb0["Blocks per group"]
			first := sb0["First block"]
			target := first + (v.groups-1)*bpg + bpg/2 // the last group half full
			bs := int64(sb0["Block size"])
			big := bytes.Repeat([]byte("grown "), int(sb0["Free blocks"]*uint64(bs)/6+1000))

			ref := filepath.Join(dir, "ref.img")
			copySparse(t, img, ref)
			if err := os.Truncate(ref, int64(target)*bs); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("resize2fs", "-f", ref, strconv.FormatUint(target, 10)).CombinedOutput(); err != nil {
				t.Fatalf("resize2fs: %v\n%s", err, out)
			}
			e2fsckClean(t, ref)

			meta := Meta{Perm: 0o644, Mtime: time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)}
			editImage(t, img, func(e *Editor) {
				if err := e.Create(ctx, "system/big.apk", meta, bytes.NewReader(big), int64(len(big))); !errors.Is(err, ErrNoSpace) {
					t.Fatalf("a file bigger than the free space before growing: %v", err)
				}
				if err := e.Grow(context.Background(), target); err != nil {
					t.Fatal(err)
				}
				if got := e.FS().Superblock().BlocksCount; got != target {
					t.Errorf("grown to %d blocks, want %d", got, target)
				}
			})
			e2fsckClean(t, img)
			got, want := superCounts(t, img), superCounts(t, ref)
			for _, k := range []string{"Block count", "Inode count", "Free inodes", "Reserved block count", "Inodes per group", "Reserved GDT blocks", "Overhead clusters"} {
				if got[k] != want[k] {
					t.Errorf("dumpe2fs %s: %d, resize2fs gives %d", k, got[k], want[k])
				}
			}
			// Every group holds the same metadata as resize2fs gives it (placed in the group
			// itself where resize2fs packs it by flex group), so the free counts agree.
			if got["Free blocks"] != want["Free blocks"] {
				t.Errorf("dumpe2fs Free blocks: %d, resize2fs gives %d", got["Free blocks"], want["Free blocks"])
			}
			if n := len(dumpe2fsGroup.FindAllString(runCmd(t, "dumpe2fs", img), -1)); uint64(n) != v.groups {
				t.Errorf("dumpe2fs lists %d groups, want %d", n, v.groups)
			}
			// e2fsck -fn checks only part of the resize inode: compare its whole block map
			if gotR, wantR := resizeBlocks(t, img), resizeBlocks(t, ref); gotR != wantR {
				t.Errorf("the resize inode maps\n%s\nresize2fs makes it map\n%s", gotR, wantR)
			}
			after := dumpSums(t, img)
			for k, sum := range before {
				if after[k] != sum {
					t.Errorf("%s changed", k)
				}
			}

			editImage(t, img, func(e *Editor) {
				if err := e.Create(ctx, "system/big.apk", meta, bytes.NewReader(big), int64(len(big))); err != nil {
					t.Fatalf("the big file after growing: %v", err)
				}
			})
			e2fsckClean(t, img)
			if got := debugfsOut(t, img, "cat /system/big.apk"); got != string(big) {
				t.Errorf("debugfs cat of the big file: %d bytes, want %d", len(got), len(big))
			}
			// growing again, into one more group
			editImage(t, img, func(e *Editor) {
				if err := e.Grow(context.Background(), target+bpg); err != nil {
					t.Fatal(err)
				}
			})
			e2fsckClean(t, img)
		})
	}
}

// TestGrowRefusals: a last group too small to be worth its metadata is left out (as resize2fs
// does), shrinking is refused, and so is a growth past what the descriptor blocks hold; refusals
// change nothing.
func TestGrowRefusals(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck")
	dir := t.TempDir()
	v := growVariants[0]
	img := mkfsForWrite(t, dir, buildWriteTree(t, dir), v.sizeMB, v.args...)
	sum := fileSum(t, img)
	editImage(t, img, func(e *Editor) {
		sb := e.FS().Superblock()
		if err := e.Grow(context.Background(), sb.BlocksCount); err == nil {
			t.Errorf("growing to the same size: no error")
		}
		perBlock := uint64(e.fsys.bs / e.fsys.descSize)
		if err := e.Grow(context.Background(), uint64(sb.BlocksPerGroup)*(perBlock+1)); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("growing past the descriptor block: %v, want errors.ErrUnsupported", err)
		}
	})
	if fileSum(t, img) != sum {
		t.Fatalf("refused growths changed the image")
	}
	editImage(t, img, func(e *Editor) {
		bpg := uint64(e.FS().Superblock().BlocksPerGroup)
		if err := e.Grow(context.Background(), 2*bpg+10); err != nil {
			t.Fatal(err)
		}
		if got := e.FS().Superblock().BlocksCount; got != 2*bpg {
			t.Errorf("a 10-block last group was kept: %d blocks, want %d", got, 2*bpg)
		}
	})
	e2fsckClean(t, img)
}

// resizeBlocks is what debugfs lists of the resize inode's blocks.
func resizeBlocks(t *testing.T, img string) string {
	out := debugfsOut(t, img, "stat <7>")
	if i := strings.Index(out, "BLOCKS:"); i >= 0 {
		return out[i:]
	}
	return ""
}

// TestGrowTinySeed runs the FuzzEdit body's replace-and-grow steps on the unmutated seed with
// 256-block groups and checks the result with e2fsck, so the fuzz body is known to reach the
// new-group and resize inode code.
func TestGrowTinySeed(t *testing.T) {
	testtool.Require(t, "mke2fs", "e2fsck")
	seeds := tinyImagesT(t)
	img := seeds[3]
	m := memImage(make([]byte, 8*len(img)))
	copy(m, img)
	e, err := Edit(m, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Replace(ctx, "big", Meta{Perm: 0o644}, bytes.NewReader(make([]byte, 3000)), 3000); err != nil {
		t.Fatal(err)
	}
	if err := e.Grow(context.Background(), uint64(len(m))/1024); err != nil {
		t.Fatal(err)
	}
	if err := e.Create(ctx, "d/new", Meta{Perm: 0o644}, bytes.NewReader(make([]byte, 200<<10)), 200<<10); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.FS().Superblock().BlocksCount; got != uint64(len(m))/1024 {
		t.Errorf("grown to %d blocks, want %d", got, len(m)/1024)
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, m, 0o644); err != nil {
		t.Fatal(err)
	}
	e2fsckClean(t, p)
}
