package payload

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/internal/samplefacts"
	"github.com/provkit/provkit/internal/testimage"
	"github.com/ulikunitz/xz"
)

type testOp struct {
	typ     OpType
	blob    []byte
	dst     []Extent
	badHash bool
	noHash  bool
	dataOff int64 // -1: append blob to the data area
}

type testPart struct {
	name     string
	size     uint64
	content  []byte // for the new_partition_info hash
	ops      []testOp
	hashTree *[2]Extent // data extent, tree extent
	fec      *[2]Extent
}

// buildPayload writes a major-version-2 payload from partitions and their operations.
func buildPayload(parts []testPart) []byte {
	var data []byte
	m := &testimage.Proto{}
	m.Varint(3, 4096)
	for _, tp := range parts {
		pu := &testimage.Proto{}
		pu.Field(1, []byte(tp.name))
		sum := sha256.Sum256(tp.content)
		pu.Field(7, (&testimage.Proto{}).Varint(1, tp.size).Field(2, sum[:]).B)
		for _, op := range tp.ops {
			o := &testimage.Proto{}
			o.Varint(1, uint64(op.typ))
			if len(op.blob) > 0 {
				o.Varint(2, uint64(len(data)))
				o.Varint(3, uint64(len(op.blob)))
				h := sha256.Sum256(op.blob)
				if op.badHash {
					h[0] ^= 1
				}
				if !op.noHash {
					o.Field(8, h[:])
				}
				data = append(data, op.blob...)
			}
			for _, e := range op.dst {
				o.Field(6, (&testimage.Proto{}).Varint(1, e.StartBlock).Varint(2, e.NumBlocks).B)
			}
			pu.Field(8, o.B)
		}
		ext := func(e Extent) []byte { return (&testimage.Proto{}).Varint(1, e.StartBlock).Varint(2, e.NumBlocks).B }
		if tp.hashTree != nil {
			pu.Field(10, ext(tp.hashTree[0])).Field(11, ext(tp.hashTree[1])).Field(12, []byte("sha256")).Field(13, []byte("salt"))
		}
		if tp.fec != nil {
			pu.Field(14, ext(tp.fec[0])).Field(15, ext(tp.fec[1])).Varint(16, 2)
		}
		m.Field(13, pu.B)
	}
	h := make([]byte, 24)
	copy(h, "CrAU")
	binary.BigEndian.PutUint64(h[4:], 2)
	binary.BigEndian.PutUint64(h[12:], uint64(len(m.B)))
	return append(append(h, m.B...), data...)
}

func zstdBlob(t testing.TB, b []byte, opts ...zstd.EOption) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZstdOperations: newer payloads compress operations with zstd (ZSTD, type 14); they read
// like REPLACE_XZ, with the same bounds on what a blob may expand to.
func TestZstdOperations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	content := make([]byte, 24*4096)
	for i := range content[:8*4096] {
		content[i] = byte(rng.IntN(256))
	}
	for i := 8 * 4096; i < len(content); i++ {
		content[i] = byte(i / 4096)
	}
	ops := []testOp{
		{typ: OpZstd, blob: zstdBlob(t, content[:16*4096]), dst: []Extent{{0, 16}}},
		{typ: OpReplaceXZ, blob: xzBlob(t, content[16*4096:20*4096]), dst: []Extent{{16, 4}}},
		{typ: OpZstd, blob: zstdBlob(t, content[20*4096:], zstd.WithEncoderLevel(zstd.SpeedBestCompression)), dst: []Extent{{20, 4}}},
	}
	pl := buildPayload([]testPart{{name: "system", size: uint64(len(content)), content: content, ops: ops}})
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Manifest.Partitions[0].OpCounts(); !strings.Contains(got, "ZSTD") {
		t.Errorf("operation counts %q do not name ZSTD", got)
	}
	r, err := p.OpenPartition("system")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(content))
	if _, err := r.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("ZSTD partition reads differently from its content")
	}
	if err := p.VerifyPartition(context.Background(), "system"); err != nil {
		t.Fatalf("verifying against new_partition_info: %v", err)
	}

	one := bytes.Repeat([]byte{9}, 4096)
	read := func(ops []testOp) error {
		pl := buildPayload([]testPart{{name: "p", size: 4096, content: one, ops: ops}})
		p, err := Open(bytes.NewReader(pl), int64(len(pl)))
		if err != nil {
			return err
		}
		return p.VerifyPartition(context.Background(), "p")
	}
	if err := read([]testOp{{typ: OpZstd, blob: zstdBlob(t, one), dst: []Extent{{0, 1}}}}); err != nil {
		t.Fatalf("one-block ZSTD: %v", err)
	}
	// A bomb stops at the operation's declared size; a short blob says how much it gave.
	if err := read([]testOp{{typ: OpZstd, blob: zstdBlob(t, make([]byte, 64<<20)), dst: []Extent{{0, 1}}}}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "more than the 4096 bytes") {
		t.Fatalf("zstd bomb: %v", err)
	}
	if err := read([]testOp{{typ: OpZstd, blob: zstdBlob(t, one[:100]), dst: []Extent{{0, 1}}}}); err == nil || !strings.Contains(err.Error(), "got 100 of the 4096 bytes") {
		t.Fatalf("short zstd: %v", err)
	}
	if err := read([]testOp{{typ: OpZstd, blob: zstdBlob(t, one), dst: []Extent{{0, 1}}, badHash: true}}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("bad ZSTD hash: %v", err)
	}
	// Not zstd at all.
	if err := read([]testOp{{typ: OpZstd, blob: []byte("not zstd data at all"), dst: []Extent{{0, 1}}}}); err == nil {
		t.Fatal("garbage accepted as a zstd blob")
	}
	// A frame asking for a 256 MiB window is refused before the decoder allocates it.
	// Frame by hand: magic, a descriptor without single-segment, window descriptor 2^(10+18),
	// one raw last block of 4096 bytes.
	big := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3}
	bh := uint32(1 | 0<<1 | 4096<<3)
	big = append(big, byte(bh), byte(bh>>8), byte(bh>>16))
	big = append(big, one...)
	if err := read([]testOp{{typ: OpZstd, blob: big[:6], dst: []Extent{{0, 1}}}}); err == nil {
		t.Fatal("a frame with no blocks accepted")
	}
	// The same frame with an 8 MiB window reads: only the window was wrong.
	small := append([]byte(nil), big...)
	small[5] = 13 << 3
	if err := read([]testOp{{typ: OpZstd, blob: small, dst: []Extent{{0, 1}}}}); err != nil {
		t.Fatalf("hand-made frame with an 8 MiB window: %v", err)
	}
	if err := read([]testOp{{typ: OpZstd, blob: big, dst: []Extent{{0, 1}}}}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("256 MiB window: %v", err)
	}
}

func xzBlob(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// fullTestPayload makes a partition of 40 blocks from REPLACE, REPLACE_XZ, ZERO and DISCARD operations,
// written out of order, with a 2-block hole that must read as zeros.
func fullTestPayload(t testing.TB) ([]byte, []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 40*4096)
	for i := range 8 * 4096 {
		content[i] = byte(rng.IntN(256))
	}
	for i := 8 * 4096; i < 20*4096; i++ {
		content[i] = byte(i / 4096) // compressible
	}
	for i := 30 * 4096; i < 38*4096; i++ {
		content[i] = byte(rng.IntN(4))
	}
	// blocks 20..25 ZERO, 26..27 hole, 28..29 DISCARD, 38..39 ZERO
	ops := []testOp{
		{typ: OpReplaceXZ, blob: xzBlob(t, append(append([]byte(nil), content[30*4096:38*4096]...), content[8*4096:20*4096]...)), dst: []Extent{{30, 8}, {8, 12}}},
		{typ: OpReplace, blob: content[:8*4096], dst: []Extent{{0, 8}}},
		{typ: OpZero, dst: []Extent{{20, 6}, {38, 2}}},
		{typ: OpDiscard, dst: []Extent{{28, 2}}},
	}
	return buildPayload([]testPart{{name: "system", size: uint64(len(content)), content: content, ops: ops}}), content
}

func TestPartitionReadAtMatchesContent(t *testing.T) {
	pl, content := fullTestPayload(t)
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		t.Fatal(err)
	}
	p.CacheBytes = 1 // force eviction after every decoded operation
	pr, err := p.OpenPartition("system")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyPartition(context.Background(), "system"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		off := rng.Int64N(int64(len(content)))
		n := rng.IntN(20000)
		buf := make([]byte, n)
		m, err := pr.ReadAt(buf, off)
		want := content[off:min(int64(len(content)), off+int64(n))]
		if m != len(want) || !bytes.Equal(buf[:m], want) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v: bytes differ", n, off, m, err)
		}
		if (err == io.EOF) != (off+int64(n) > int64(len(content))) {
			t.Fatalf("ReadAt(%d, %d) err = %v", n, off, err)
		}
	}
	if len(pr.cache) > 1 {
		t.Fatalf("cache holds %d operations with a 1-byte budget", len(pr.cache))
	}
}

func TestOperationHashAndBombs(t *testing.T) {
	content := bytes.Repeat([]byte{7}, 4096)
	read := func(ops []testOp) error {
		pl := buildPayload([]testPart{{name: "p", size: 4096, content: content, ops: ops}})
		p, err := Open(bytes.NewReader(pl), int64(len(pl)))
		if err != nil {
			return err
		}
		return p.VerifyPartition(context.Background(), "p")
	}
	if err := read([]testOp{{typ: OpReplace, blob: content, dst: []Extent{{0, 1}}, badHash: true}}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("bad REPLACE hash: %v", err)
	}
	if err := read([]testOp{{typ: OpReplaceXZ, blob: xzBlob(t, content), dst: []Extent{{0, 1}}, badHash: true}}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("bad XZ hash: %v", err)
	}
	// An xz blob that expands past the operation's one block (a bomb) stops at the declared size.
	bomb := xzBlob(t, make([]byte, 64<<20))
	if err := read([]testOp{{typ: OpReplaceXZ, blob: bomb, dst: []Extent{{0, 1}}}}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "more than the 4096 bytes") {
		t.Fatalf("xz bomb: %v", err)
	}
	// An xz blob that is too short for its blocks.
	if err := read([]testOp{{typ: OpReplaceXZ, blob: xzBlob(t, content[:100]), dst: []Extent{{0, 1}}}}); err == nil || !strings.Contains(err.Error(), "got 100 of the 4096 bytes") {
		t.Fatalf("short xz: %v", err)
	}
	// A whole partition of 4096 bytes with a wrong declared hash.
	pl := buildPayload([]testPart{{name: "p", size: 4096, content: []byte("other"), ops: []testOp{{typ: OpReplace, blob: content, dst: []Extent{{0, 1}}}}}})
	p, _ := Open(bytes.NewReader(pl), int64(len(pl)))
	if err := p.VerifyPartition(context.Background(), "p"); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("partition hash: %v", err)
	}
	// An xz header asking for a 3 GiB dictionary is refused before decoding.
	big := xzBlob(t, content)
	hdrAt := 12
	if big[hdrAt+2] != 0x21 || big[hdrAt+3] != 1 {
		t.Fatalf("unexpected xz block header % x", big[hdrAt:hdrAt+8])
	}
	big[hdrAt+4] = 39
	if err := checkXZ(big); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("huge dictionary: %v", err)
	}
}

func TestHostilePayloads(t *testing.T) {
	content := make([]byte, 8192)
	cases := []struct {
		name  string
		parts []testPart
		open  bool // error at Open (else at OpenPartition)
		want  string
	}{
		{"extent past partition", []testPart{{name: "p", size: 8192, ops: []testOp{{typ: OpZero, dst: []Extent{{1, 5}}}}}}, true, "run past the 8192-byte partition"},
		{"overlapping ops", []testPart{{name: "p", size: 8192, ops: []testOp{{typ: OpZero, dst: []Extent{{0, 2}}}, {typ: OpDiscard, dst: []Extent{{1, 1}}}}}}, false, "write the same block 1"},
		{"replace length", []testPart{{name: "p", size: 8192, ops: []testOp{{typ: OpReplace, blob: content[:100], dst: []Extent{{0, 1}}}}}}, false, "carries 100 bytes for 4096"},
		{"duplicate partition", []testPart{{name: "p", size: 0}, {name: "p", size: 0}}, true, "appears twice"},
		{"delta", []testPart{{name: "p", size: 4096, ops: []testOp{{typ: OpSourceCopy, dst: []Extent{{0, 1}}}}}}, false, "delta payload: needs the source build"},
		{"unknown op", []testPart{{name: "p", size: 4096, ops: []testOp{{typ: 99, dst: []Extent{{0, 1}}}}}}, false, "unknown type UNKNOWN(99)"},
	}
	for _, c := range cases {
		pl := buildPayload(c.parts)
		p, err := Open(bytes.NewReader(pl), int64(len(pl)))
		if !c.open && err == nil {
			_, err = p.OpenPartition("p")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Data blob past the end of the payload.
	pl := buildPayload([]testPart{{name: "p", size: 4096, ops: []testOp{{typ: OpReplace, blob: make([]byte, 4096), dst: []Extent{{0, 1}}}}}})
	if _, err := Open(bytes.NewReader(pl[:len(pl)-1]), int64(len(pl)-1)); err == nil || !strings.Contains(err.Error(), "runs past the payload end") {
		t.Errorf("truncated blob: %v", err)
	}
	// Absurd manifest size.
	bad := append([]byte(nil), pl...)
	binary.BigEndian.PutUint64(bad[12:], 1<<60)
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("absurd manifest: %v", err)
	}
	if _, err := Open(bytes.NewReader([]byte("PK\x03\x04 not a payload at all")), 26); !errors.Is(err, ErrNotPayload) {
		t.Errorf("zip: %v", err)
	}
	p, _ := Open(bytes.NewReader(pl), int64(len(pl)))
	if _, err := p.OpenPartition("vendor"); !errors.Is(err, ErrNoPartition) {
		t.Errorf("missing partition: %v", err)
	}
}

// otaZip wraps a payload in an OTA zip as ota_from_target_files lays it out.
func otaZip(t testing.TB, payload []byte, method uint16) []byte {
	p, err := Open(bytes.NewReader(payload), int64(len(payload)))
	if err != nil {
		t.Fatal(err)
	}
	fh := sha256.Sum256(payload)
	md, _ := p.MetadataSHA256()
	props := fmt.Sprintf("FILE_HASH=%s\nFILE_SIZE=%d\nMETADATA_HASH=%s\nMETADATA_SIZE=%d\n",
		base64.StdEncoding.EncodeToString(fh[:]), len(payload), base64.StdEncoding.EncodeToString(md), p.MetadataSize())
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range []struct {
		name   string
		data   []byte
		method uint16
	}{
		{MetadataEntry, []byte("ota-type=AB\npre-device=provkit\n"), zip.Store},
		{PayloadEntry, payload, method},
		{PropertiesEntry, []byte(props), zip.Store},
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	zw.Close()
	return buf.Bytes()
}

func TestOTAZip(t *testing.T) {
	pl, content := fullTestPayload(t)
	z := otaZip(t, pl, zip.Store)
	o, err := OpenOTA(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z[o.PayloadOffset:o.PayloadOffset+4], []byte("CrAU")) || o.Metadata["pre-device"] != "provkit" {
		t.Fatalf("payload at %d, metadata %v", o.PayloadOffset, o.Metadata)
	}
	c, err := o.CheckProperties(context.Background())
	if err != nil || c != (PropertyCheck{true, true, true, true}) {
		t.Fatalf("properties: %+v %v", c, err)
	}
	pr, err := o.Payload.OpenPartition("system")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(io.NewSectionReader(pr, 0, pr.Size()))
	if !bytes.Equal(got, content) {
		t.Fatal("partition read through the OTA zip differs")
	}
	// A payload changed after the properties were written no longer matches FILE_HASH.
	z[o.PayloadOffset+int64(len(pl))-1] ^= 1
	o, _ = OpenOTA(bytes.NewReader(z), int64(len(z)))
	if c, _ := o.CheckProperties(context.Background()); c.FileHashOK || !c.MetadataHashOK {
		t.Fatalf("tampered payload: %+v", c)
	}
	z = otaZip(t, pl, zip.Deflate)
	if _, err := OpenOTA(bytes.NewReader(z), int64(len(z))); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("deflated payload.bin: %v", err)
	}
}

func readSample(t testing.TB, name string) []byte {
	b, err := os.ReadFile(samplefacts.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzOpen(f *testing.F) {
	f.Add(readSample(f, "aosp-update-engine/full_payload.bin"))
	f.Add(readSample(f, "aosp-update-engine/delta_payload.bin"))
	pl, _ := fullTestPayload(f)
	f.Add(pl)
	f.Add(buildPayload([]testPart{{name: "p", size: 8192, content: make([]byte, 8192), ops: []testOp{
		{typ: OpReplace, blob: make([]byte, 4096), dst: []Extent{{0, 1}}}, {typ: OpZero, dst: []Extent{{1, 1}}}}}}))
	zc := bytes.Repeat([]byte("zstd"), 2048)
	f.Add(buildPayload([]testPart{{name: "p", size: 8192, content: zc, ops: []testOp{
		{typ: OpZstd, blob: zstdBlob(f, zc), dst: []Extent{{0, 2}}}}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		p.Signatures()
		for _, pu := range p.Manifest.Partitions {
			pr, err := p.OpenPartition(pu.Name)
			if err != nil {
				continue
			}
			if pr.Size() > 1<<16 {
				continue // verified partitions of fuzzed payloads stay small
			}
			if err := p.VerifyPartition(context.Background(), pu.Name); err == nil && pu.New == nil {
				t.Fatal("verified a partition without a declared hash")
			}
		}
	})
}

func FuzzOpenOTA(f *testing.F) {
	for _, s := range []string{"tuna_vbmeta.zip", "tuna_vbmeta_system.zip"} {
		f.Add(readSample(f, "aosp-build/"+s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := OpenOTA(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if o.PayloadOffset < 0 || o.PayloadOffset+o.Payload.Size() > int64(len(data)) {
			t.Fatalf("payload %d+%d outside %d bytes", o.PayloadOffset, o.Payload.Size(), len(data))
		}
		o.CheckPropertyFiles()
		o.CheckProperties(context.Background())
	})
}

func benchPayload(b *testing.B) (*Payload, []byte, [][]byte) {
	const opBlocks, nOps = 512, 16
	rng := rand.New(rand.NewPCG(5, 6))
	content := make([]byte, opBlocks*4096*nOps)
	for i := range content {
		content[i] = byte(rng.IntN(16))
	}
	var ops []testOp
	var blobs [][]byte
	for i := range nOps {
		chunk := content[i*opBlocks*4096 : (i+1)*opBlocks*4096]
		blobs = append(blobs, xzBlob(b, chunk))
		ops = append(ops, testOp{typ: OpReplaceXZ, blob: blobs[i], dst: []Extent{{uint64(i * opBlocks), opBlocks}}})
	}
	pl := buildPayload([]testPart{{name: "system", size: uint64(len(content)), content: content, ops: ops}})
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		b.Fatal(err)
	}
	return p, content, blobs
}

// BenchmarkPartitionReadWarm reads 64 KiB at random offsets of a 32 MiB partition made of 2 MiB
// REPLACE_XZ operations once every operation is in the cache: the cost of mapping a range.
func BenchmarkPartitionReadWarm(b *testing.B) {
	p, content, _ := benchPayload(b)
	pr, _ := p.OpenPartition("system")
	io.Copy(io.Discard, io.NewSectionReader(pr, 0, pr.Size())) // warm the cache
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := pr.ReadAt(buf, rng.Int64N(int64(len(content)-len(buf)))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPartitionReadCold reads the whole partition with a cache too small to help: the speed of
// decoding REPLACE_XZ operations (github.com/ulikunitz/xz, pure Go). When the xz program is
// installed it also decodes the same blobs with `xz -dc` and reports the time ratio provkit/xz.
func BenchmarkPartitionReadCold(b *testing.B) {
	p, content, blobs := benchPayload(b)
	p.CacheBytes = 1
	xzPath, xzErr := exec.LookPath("xz")
	blobFile := filepath.Join(b.TempDir(), "ops.xz")
	os.WriteFile(blobFile, bytes.Join(blobs, nil), 0o600)
	var ours, theirs time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		start := time.Now()
		pr, _ := p.OpenPartition("system")
		if _, err := io.Copy(io.Discard, io.NewSectionReader(pr, 0, pr.Size())); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if xzErr == nil {
			start = time.Now()
			cmd := exec.Command(xzPath, "-dc", "-T1", blobFile)
			out, err := cmd.Output()
			if err != nil || len(out) != len(content) {
				b.Fatalf("xz -dc: %v, %d bytes", err, len(out))
			}
			theirs += time.Since(start)
		}
	}
	if theirs > 0 {
		b.ReportMetric(float64(ours)/float64(theirs), "provkit/xz")
	}
}

// BenchmarkPartitionReadZstdCold is BenchmarkPartitionReadCold with ZSTD operations (newer
// payloads; github.com/klauspost/compress/zstd), against `zstd -dc` on the same frames when the
// zstd program is installed (ratio provkit/zstd).
func BenchmarkPartitionReadZstdCold(b *testing.B) {
	const opBlocks, nOps = 512, 16
	rng := rand.New(rand.NewPCG(5, 6))
	content := make([]byte, opBlocks*4096*nOps)
	for i := range content {
		content[i] = byte(rng.IntN(16))
	}
	var ops []testOp
	var blobs [][]byte
	for i := range nOps {
		blobs = append(blobs, zstdBlob(b, content[i*opBlocks*4096:(i+1)*opBlocks*4096]))
		ops = append(ops, testOp{typ: OpZstd, blob: blobs[i], dst: []Extent{{uint64(i * opBlocks), opBlocks}}})
	}
	pl := buildPayload([]testPart{{name: "system", size: uint64(len(content)), content: content, ops: ops}})
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		b.Fatal(err)
	}
	p.CacheBytes = 1
	zPath, zErr := exec.LookPath("zstd")
	blobFile := filepath.Join(b.TempDir(), "ops.zst")
	os.WriteFile(blobFile, bytes.Join(blobs, nil), 0o600)
	var ours, theirs time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		start := time.Now()
		pr, _ := p.OpenPartition("system")
		if _, err := io.Copy(io.Discard, io.NewSectionReader(pr, 0, pr.Size())); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if zErr == nil {
			start = time.Now()
			out, err := exec.Command(zPath, "-dc", "-T1", blobFile).Output()
			if err != nil || len(out) != len(content) {
				b.Fatalf("zstd -dc: %v, %d bytes", err, len(out))
			}
			theirs += time.Since(start)
		}
	}
	if theirs > 0 {
		b.ReportMetric(float64(ours)/float64(theirs), "provkit/zstd")
	}
}

func TestConcurrentReads(t *testing.T) {
	pl, content := fullTestPayload(t)
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		t.Fatal(err)
	}
	p.CacheBytes = 40 << 10 // smaller than the decoded XZ operation: constant eviction
	pr, err := p.OpenPartition("system")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 5000)
			for range 50 {
				off := rng.Int64N(int64(len(content) - len(buf)))
				if _, err := pr.ReadAt(buf, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, content[off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("goroutine %d: bytes at %d differ", g, off)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerityComputedOnDevice(t *testing.T) {
	// Blocks 0-7 data and block 11 (the AVB footer area) written by operations; block 8 the hash
	// tree and blocks 9-10 the FEC, which update_engine computes on the device.
	content := make([]byte, 12*4096)
	for i := range content {
		content[i] = byte(i / 4096 * 7)
	}
	_, tree, err := avb.BuildHashtree(context.Background(), "sha256", []byte("salt"), 4096, 4096, bytes.NewReader(content[:8*4096]), 8*4096)
	if err != nil {
		t.Fatal(err)
	}
	copy(content[8*4096:], tree)
	fec, err := avb.BuildFEC(context.Background(), bytes.NewReader(content[:9*4096]), 9*4096, 2, 4096)
	if err != nil || len(fec) != 2*4096 {
		t.Fatalf("FEC: %d bytes, %v", len(fec), err)
	}
	copy(content[9*4096:], fec)
	part := testPart{name: "system", size: uint64(len(content)), content: content,
		ops: []testOp{
			{typ: OpReplaceXZ, blob: xzBlob(t, content[:8*4096]), dst: []Extent{{0, 8}}},
			{typ: OpReplace, blob: content[11*4096:], dst: []Extent{{11, 1}}},
		},
		hashTree: &[2]Extent{{0, 8}, {8, 1}},
		fec:      &[2]Extent{{0, 9}, {9, 2}},
	}
	pl := buildPayload([]testPart{part})
	p, err := Open(bytes.NewReader(pl), int64(len(pl)))
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := p.Partition("system")
	if pu.HashTree == nil || *pu.HashTree != (Extent{8, 1}) || pu.HashTreeAlgorithm != "sha256" || pu.FECRoots != 2 || *pu.FEC != (Extent{9, 2}) {
		t.Fatalf("verity fields %+v", pu)
	}
	pr, err := p.OpenPartition("system")
	if err != nil {
		t.Fatal(err)
	}
	if got := pr.OnDevice(); len(got) != 0 {
		t.Fatalf("on-device regions %v, want none (tree and FEC rebuilt)", got)
	}
	got := make([]byte, len(content))
	if _, err := pr.ReadAt(got, 0); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("partition with rebuilt tree and FEC differs: %v", err)
	}
	if err := p.VerifyPartition(context.Background(), "system"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// FEC extents that do not fit libfec's layout cannot be rebuilt: those blocks are refused.
	odd := part
	odd.fec = &[2]Extent{{0, 9}, {9, 1}}
	odd.ops = []testOp{odd.ops[0], {typ: OpReplace, blob: content[10*4096:], dst: []Extent{{10, 2}}}}
	pl = buildPayload([]testPart{odd})
	p, _ = Open(bytes.NewReader(pl), int64(len(pl)))
	pr, _ = p.OpenPartition("system")
	if got := pr.OnDevice(); len(got) != 1 || got[0] != [2]int64{9 * 4096, 4096} {
		t.Fatalf("on-device regions %v", got)
	}
	if _, err := pr.ReadAt(got[:100], 9*4096+10); !errors.Is(err, ErrVerityOnDevice) {
		t.Fatalf("FEC region: %v", err)
	}
	if err := p.VerifyPartition(context.Background(), "system"); !errors.Is(err, ErrVerityOnDevice) || !strings.Contains(err.Error(), "every operation's data hash matches") {
		t.Fatalf("verify: %v", err)
	}
	// A bad operation hash is still found.
	odd.ops[1].badHash = true
	pl = buildPayload([]testPart{odd})
	p, _ = Open(bytes.NewReader(pl), int64(len(pl)))
	if err := p.VerifyPartition(context.Background(), "system"); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("verify with a bad operation: %v", err)
	}
}

// withDict returns a copy of an xz stream from xzBlob whose first block header asks for LZMA2
// dictionary byte d, with the header CRC-32 fixed so that only the dictionary size is wrong.
func withDict(t testing.TB, stream []byte, d byte) []byte {
	b := append([]byte(nil), stream...)
	const at = 12 // the first block header follows the 12-byte stream header
	size := (int(b[at]) + 1) * 4
	if b[at+2] != 0x21 || b[at+3] != 1 {
		t.Fatalf("unexpected xz block header % x", b[at:at+8])
	}
	b[at+4] = d
	binary.LittleEndian.PutUint32(b[at+size-4:], crc32.ChecksumIEEE(b[at:at+size-4]))
	return b
}

// FuzzCheckXZ: checkXZ classifies every rejection (ErrCorrupt or ErrUnsupported), and what it
// accepts is safe to hand to the xz decoder: decoding never allocates much more than the largest
// dictionary checkXZ allows (a stream asking for 3 GiB would allocate it).
func FuzzCheckXZ(f *testing.F) {
	plain := xzBlob(f, bytes.Repeat([]byte("provkit"), 1000))
	f.Add(plain)
	f.Add(xzBlob(f, nil))
	f.Add(withDict(f, plain, 39)) // a 3 GiB dictionary: refused
	f.Add(withDict(f, plain, 29)) // 96 MiB, just over the limit: refused
	f.Add(withDict(f, plain, 28)) // 64 MiB, the limit: accepted
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkXZ(data); err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("rejection wraps neither ErrCorrupt nor ErrUnsupported: %v", err)
			}
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if x, err := (xz.ReaderConfig{SingleStream: true}).NewReader(bytes.NewReader(data)); err == nil {
			io.Copy(io.Discard, io.LimitReader(x, 1<<20))
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > maxXZDict+16<<20 {
			t.Fatalf("checkXZ accepted a stream whose decoding allocated %d bytes (dictionary limit %d)", n, maxXZDict)
		}
	})
}
