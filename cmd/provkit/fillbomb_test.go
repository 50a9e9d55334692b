package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The review's 44-byte "fill bomb" (one FILL chunk of 2^31-1 blocks, 8 TiB) is refused before
// anything is written: the expansion is larger than the output's file system has free.
func TestUnsparseRefusesFillBomb(t *testing.T) {
	var b bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&b, le, uint32(0xed26ff3a))
	binary.Write(&b, le, []uint16{1, 0, 28, 12})
	binary.Write(&b, le, []uint32{4096, 1<<31 - 1, 1, 0})
	binary.Write(&b, le, []uint16{0xCAC2, 0})
	binary.Write(&b, le, []uint32{1<<31 - 1, 16, 0xdeadbeef})
	dir := t.TempDir()
	in, out := filepath.Join(dir, "bomb.img"), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(in, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run("image", "unsparse", in, out)
	if code != 1 || !strings.Contains(errOut, "has") || !strings.Contains(errOut, "free; nothing was written") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("files left in the output directory: %v", ents)
	}
}
