package erofs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/internal/unixmode"
)

// TestRewriteKeepsTreeAndPassesFsck reads images mkfs.erofs made (uncompressed, lz4hc, compact
// inodes), writes them again with Write plus new files, and wants: fsck.erofs clean, every old
// entry identical (mode, owner, mtime, xattrs incl. security.selinux, bytes, link targets, devices),
// the new files present with their bytes, mode, owner and label, also as fsck.erofs --extract
// shows them.
func TestRewriteKeepsTreeAndPassesFsck(t *testing.T) {
	testtool.Require(t, "mkfs.erofs", "fsck.erofs")
	src := t.TempDir()
	contexts := buildTree(t, src, treeOptions{seed: 7, manyFiles: 300, bigFile: 1<<20 + 99})
	fc := filepath.Join(t.TempDir(), "file_contexts")
	if err := os.WriteFile(fc, []byte(contexts), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-Eforce-inode-extended"}, {"-zlz4hc", "-Eztailpacking"}, {"-zlz4", "-Eforce-inode-compact", "-T0", "--all-root"}} {
		t.Run(strings.Join(args, ""), func(t *testing.T) {
			old := openImage(t, mkfs(t, src, append([]string{"--file-contexts=" + fc}, args...)...), Options{})
			nodes, opts, err := Tree(context.Background(), old)
			if err != nil {
				t.Fatal(err)
			}
			apk := bytes.Repeat([]byte("PK\x03\x04new apk "), 5000)
			mtime := time.Unix(1700000000, 0)
			label := map[string][]byte{"security.selinux": []byte("u:object_r:system_file:s0\x00")}
			nodes = append(nodes,
				Node{Path: "newapp", Mode: unixmode.IFDIR | 0o755, Mtime: mtime, Xattrs: label},
				Node{Path: "newapp/New.apk", Mode: unixmode.IFREG | 0o644, UID: 0, GID: 0, Mtime: mtime, Xattrs: label, Size: int64(len(apk)), Data: bytes.NewReader(apk)},
				Node{Path: "newapp/empty", Mode: unixmode.IFREG | 0o600, UID: 1000, GID: 1000, Mtime: mtime},
			)
			img := filepath.Join(t.TempDir(), "new.erofs")
			fh, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			size, err := Write(context.Background(), fh, nodes, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := fh.Truncate(size); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			if out, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
				t.Fatalf("fsck.erofs: %v\n%s", err, out)
			}
			out := filepath.Join(t.TempDir(), "x")
			if o, err := exec.Command("fsck.erofs", "--extract="+out, img).CombinedOutput(); err != nil {
				t.Fatalf("fsck.erofs --extract: %v\n%s", err, o)
			}
			if got, err := os.ReadFile(filepath.Join(out, "newapp/New.apk")); err != nil || !bytes.Equal(got, apk) {
				t.Errorf("fsck.erofs --extract: New.apk differs (%v)", err)
			}
			nf := openImage(t, img, Options{})
			before, after := scanImage(t, old), scanImage(t, nf)
			for p, e := range before {
				if a, ok := after[p]; !ok {
					t.Errorf("%s missing after rewrite", p)
				} else if e.String() != a.String() || !reflect.DeepEqual(e.xattrs, a.xattrs) {
					t.Errorf("%s changed:\nbefore %v\nafter  %v", p, e, a)
				}
			}
			n := after["newapp/New.apk"]
			if n.size != int64(len(apk)) || n.mode != 0o644 || n.xattrs["security.selinux"] != "u:object_r:system_file:s0\x00" {
				t.Errorf("new file: %v", n)
			}
			if e := after["newapp/empty"]; e.uid != 1000 || e.size != 0 {
				t.Errorf("empty file: %v", e)
			}
			if len(after) != len(before)+3 {
				t.Errorf("%d entries after, want %d", len(after), len(before)+3)
			}
			if nf.Superblock().UUID != old.Superblock().UUID {
				t.Error("UUID not kept")
			}
		})
	}
}

func TestWriteRejectsBadTrees(t *testing.T) {
	dir := Node{Path: ".", Mode: unixmode.IFDIR | 0o755}
	for name, nodes := range map[string][]Node{
		"no root":        {{Path: "a", Mode: unixmode.IFREG}},
		"orphan":         {dir, {Path: "a/b", Mode: unixmode.IFREG}},
		"duplicate":      {dir, {Path: "a", Mode: unixmode.IFREG}, {Path: "a", Mode: unixmode.IFREG}},
		"bad path":       {dir, {Path: "../a", Mode: unixmode.IFREG}},
		"bad xattr":      {dir, {Path: "a", Mode: unixmode.IFREG, Xattrs: map[string][]byte{"foo.bar": nil}}},
		"data missing":   {dir, {Path: "a", Mode: unixmode.IFREG, Size: 3}},
		"empty symlink":  {dir, {Path: "a", Mode: unixmode.IFLNK}},
		"file as parent": {dir, {Path: "a", Mode: unixmode.IFREG}, {Path: "a/b", Mode: unixmode.IFREG}},
	} {
		if _, err := Write(context.Background(), &bufWriterAt{}, nodes, WriteOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type bufWriterAt struct{ b []byte }

func (w *bufWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if need := int(off) + len(p); need > len(w.b) {
		w.b = append(w.b, make([]byte, need-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

// BenchmarkRewrite reads an lz4hc image of thousands of files (benchImage) as a tree and writes it
// anew (compressed files copied compressed) to a temporary file: the file-system half of
// `provkit image patch`.
func BenchmarkRewrite(b *testing.B) {
	img, _ := benchImage(b)
	f := openImage(b, img, Options{})
	out := filepath.Join(b.TempDir(), "out.erofs")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		nodes, opts, err := Tree(context.Background(), f)
		if err != nil {
			b.Fatal(err)
		}
		fh, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		size, err := Write(context.Background(), fh, nodes, opts)
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
	}
}
