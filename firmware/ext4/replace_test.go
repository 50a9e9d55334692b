package ext4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
)

// TestReplaceAgainstE2fsck replaces files of images made by mke2fs: with data of the same size
// (the freed blocks are reused: the free count is what it was), with bigger data and new owner,
// mode and label, and with nothing; e2fsck -fn finds nothing, debugfs returns the new bytes and
// metadata, and the other files are unchanged. Directories, symlinks and hard links are refused,
// changing nothing.
func TestReplaceAgainstE2fsck(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck", "dumpe2fs")
	ctx := context.Background()
	for _, v := range writeVariants {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			img := mkfsForWrite(t, dir, buildWriteTree(t, dir), v.sizeMB, v.args...)
			cf := filepath.Join(dir, "links")
			os.WriteFile(cf, []byte("symlink /system/lnk /system/build.prop\nln /system/etc/permissions/existing.xml /system/hard\nsif /system/etc/permissions/existing.xml links_count 2\n"), 0o644)
			runCmd(t, "debugfs", "-w", "-f", cf, img)
			e2fsckClean(t, img)
			before := dumpSums(t, img)
			free0 := superCounts(t, img)["Free blocks"]

			mtime := time.Date(2010, 2, 3, 4, 5, 6, 0, time.UTC)
			label := []byte("u:object_r:system_app_file:s0\x00")
			same := bytes.Repeat([]byte("replaced "), 50000/9+1)[:50000]
			bigger := bytes.Repeat([]byte("a bigger build.prop "), 150000)
			editImage(t, img, func(e *Editor) {
				m := Meta{Perm: 0o644, Mtime: mtime}
				if err := e.Replace(ctx, "system/app/Other/Other.apk", m, bytes.NewReader(same), int64(len(same))); err != nil {
					t.Fatal(err)
				}
			})
			e2fsckClean(t, img)
			if free := superCounts(t, img)["Free blocks"]; free != free0 {
				t.Errorf("free blocks after replacing with data of the same size: %d, before %d", free, free0)
			}
			sum := fileSum(t, img)
			editImage(t, img, func(e *Editor) {
				m := Meta{Perm: 0o644}
				for _, c := range []struct {
					name string
					want error
				}{
					{"system", ErrNotReplaceable},
					{"system/lnk", ErrNotReplaceable},
					{"system/hard", ErrNotReplaceable},
					{"system/nothere", fs.ErrNotExist},
					{"system/build.prop/x", fs.ErrNotExist},
				} {
					if err := e.Replace(ctx, c.name, m, strings.NewReader("x"), 1); !errors.Is(err, c.want) {
						t.Errorf("replacing %s: %v, want %v", c.name, err, c.want)
					}
				}
				if err := e.Replace(ctx, "system/build.prop", m, bytes.NewReader(nil), int64(v.sizeMB)<<20); !errors.Is(err, ErrNoSpace) {
					t.Errorf("replacing with more than the free space: %v, want ErrNoSpace", err)
				}
			})
			if fileSum(t, img) != sum {
				t.Fatalf("refused replacements changed the image")
			}
			editImage(t, img, func(e *Editor) {
				m := Meta{Perm: 0o600, UID: 1000, GID: 1007, Mtime: mtime, Xattrs: map[string][]byte{"security.selinux": label}}
				if err := e.Replace(ctx, "system/build.prop", m, bytes.NewReader(bigger), int64(len(bigger))); err != nil {
					t.Fatal(err)
				}
				if err := e.Replace(ctx, "frag/f003", m, bytes.NewReader(nil), 0); err != nil {
					t.Fatal(err)
				}
			})
			e2fsckClean(t, img)
			if got := debugfsOut(t, img, "cat /system/app/Other/Other.apk"); got != string(same) {
				t.Errorf("debugfs cat of the same-size replacement: %d bytes", len(got))
			}
			if got := debugfsOut(t, img, "cat /system/build.prop"); got != string(bigger) {
				t.Errorf("debugfs cat of the bigger replacement: %d bytes, want %d", len(got), len(bigger))
			}
			st := debugfsOut(t, img, "stat /system/build.prop")
			for _, want := range []string{"Type: regular    Mode:  0600", "User:  1000   Group:  1007", fmt.Sprintf("Size: %d", len(bigger)), "Links: 1"} {
				if !strings.Contains(st, want) {
					t.Errorf("debugfs stat lacks %q:\n%s", want, st)
				}
			}
			if got := debugfsOut(t, img, "ea_get /system/build.prop security.selinux"); !strings.Contains(got, "u:object_r:system_app_file:s0") {
				t.Errorf("debugfs ea_get: %q", got)
			}
			if got := debugfsOut(t, img, "cat /frag/f003"); got != "" {
				t.Errorf("debugfs cat of the emptied file: %d bytes", len(got))
			}
			after := dumpSums(t, img)
			for k, s := range before {
				switch k {
				case "system/app/Other/Other.apk", "system/build.prop", "frag/f003", "system/lnk":
					continue
				}
				if after[k] != s {
					t.Errorf("%s changed", k)
				}
			}
		})
	}
}

// TestReplaceExtentTree replaces a file whose extents are in a tree block: the block is freed
// with the data (e2fsck counts them), and the free count comes back to what it was before the
// file was added.
func TestReplaceExtentTree(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck", "dumpe2fs")
	ctx := context.Background()
	v := writeVariants[1]
	dir := t.TempDir()
	img := mkfsForWrite(t, dir, buildWriteTree(t, dir), v.sizeMB, v.args...)
	var rm strings.Builder
	for i := 0; i < 40; i += 2 {
		fmt.Fprintf(&rm, "rm /frag/f%03d\n", i)
	}
	editImage(t, img, func(e *Editor) {
		n := int64(e.freeBlocks()-4) * e.fsys.bs
		if err := e.Create(ctx, "filler", Meta{Perm: 0o600}, bytes.NewReader(make([]byte, n)), n); err != nil {
			t.Fatal(err)
		}
	})
	cf := filepath.Join(dir, "rm")
	os.WriteFile(cf, []byte(rm.String()), 0o644)
	runCmd(t, "debugfs", "-w", "-f", cf, img)
	e2fsckClean(t, img)
	free0 := superCounts(t, img)["Free blocks"]
	data := bytes.Repeat([]byte("0123456789abcdef"), 15*4096/16-3)
	editImage(t, img, func(e *Editor) {
		if err := e.Create(ctx, "frag/spread", Meta{Perm: 0o644}, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	})
	if st := debugfsOut(t, img, "stat /frag/spread"); !strings.Contains(st, "(ETB0)") {
		t.Fatalf("the file has no extent tree block:\n%s", st)
	}
	editImage(t, img, func(e *Editor) {
		if err := e.Replace(ctx, "frag/spread", Meta{Perm: 0o644}, strings.NewReader("small"), 5); err != nil {
			t.Fatal(err)
		}
	})
	e2fsckClean(t, img)
	if free := superCounts(t, img)["Free blocks"]; free != free0-1 {
		t.Errorf("free blocks: %d, want %d (one block for the new data)", free, free0-1)
	}
	if got := debugfsOut(t, img, "cat /frag/spread"); got != "small" {
		t.Errorf("debugfs cat: %q", got)
	}
}
