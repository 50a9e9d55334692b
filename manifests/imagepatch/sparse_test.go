package imagepatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// sparseCopy copies the firmware directory fw to a new one whose product.img is made sparse by
// img2simg, and returns it.
func sparseCopy(t *testing.T, fx *fixture, name string) string {
	t.Helper()
	testtool.Require(t, "img2simg", "simg2img")
	dir := filepath.Join(fx.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(fx.fw)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		src := filepath.Join(fx.fw, e.Name())
		if e.Name() == "product.img" {
			if out, err := exec.Command("img2simg", src, filepath.Join(dir, e.Name())).CombinedOutput(); err != nil {
				t.Fatalf("img2simg: %v\n%s", err, out)
			}
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, e.Name()), b)
	}
	return dir
}

func unsparse(t *testing.T, img string) []byte {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "raw.img")
	if out, err := exec.Command("simg2img", img, raw).CombinedOutput(); err != nil {
		t.Fatalf("simg2img %s: %v\n%s", img, err, out)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPatchSparse: an EROFS or ext4 product.img made sparse by img2simg is patched; the output
// product.img is a sparse image of the same block size, simg2img makes it byte for byte the image
// provkit writes from the raw input with the same options, vbmeta.img is the same too, the audit
// passes on the sparse output, fsck finds nothing, avbtool verifies the unsparsed output, a dry run
// reports what the real run does, and the input is untouched.
func TestPatchSparse(t *testing.T) {
	for _, format := range []string{"erofs", "ext4"} {
		t.Run(format, func(t *testing.T) {
			var fx *fixture
			if format == "erofs" {
				fx = newFirmware(t, false, 0)
			} else {
				fx = newExt4Firmware(t, true, false)
			}
			pol, err := policy.Load(fx.policyPath)
			if err != nil {
				t.Fatal(err)
			}
			sfw := sparseCopy(t, fx, "sparse-fw")
			before := digestDir(t, sfw)
			oem := signer(t, fx.ref, "testkey_rsa2048.pem")
			run := func(in, out string, dry bool) *Report {
				t.Helper()
				rep, err := Run(context.Background(), Options{Policy: pol, Input: in, Out: out, Signer: oem, Inspector: inspector{}, DryRun: dry})
				if err != nil {
					t.Fatalf("patching %s: %v", in, err)
				}
				return rep
			}
			rawOut, sparseOut := filepath.Join(fx.dir, "out-raw"), filepath.Join(fx.dir, "out-sparse")
			rawRep := run(fx.fw, rawOut, false)
			dry := run(sfw, sparseOut, true)
			if _, err := os.Lstat(sparseOut); err == nil {
				t.Fatal("the dry run wrote its output")
			}
			rep := run(sfw, sparseOut, false)
			if after := digestDir(t, sfw); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("the input was modified")
			}

			p, rp := rep.Partitions[0], rawRep.Partitions[0]
			if !p.Sparse || rp.Sparse || p.Format != format || p.File != "product.img" {
				t.Errorf("sparse report %+v, raw report %+v", p, rp)
			}
			if p.SHA256Before != rp.SHA256Before || p.SHA256After != rp.SHA256After || p.SizeAfter != rp.SizeAfter || p.RootDigestAfter != rp.RootDigestAfter {
				t.Errorf("the sparse and raw reports disagree:\n%+v\n%+v", p, rp)
			}
			if fmt.Sprint(dry.Partitions[0].Files) != fmt.Sprint(p.Files) || !dry.Partitions[0].Sparse || len(dry.Partitions) != len(rep.Partitions) {
				t.Errorf("the dry run reports %+v, the run %+v", dry.Partitions, rep.Partitions)
			}

			img := filepath.Join(sparseOut, "product.img")
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			sim, err := sparse.Open(f, st.Size())
			if err != nil {
				t.Fatalf("the output product.img is not a sparse image: %v", err)
			}
			f.Close()
			if bs := sim.Header().BlockSize; bs != 4096 {
				t.Errorf("output block size %d, want the input's 4096", bs)
			}
			if st.Size() >= sim.Size() {
				t.Errorf("the sparse output (%d bytes) is not smaller than its expansion (%d)", st.Size(), sim.Size())
			}
			got := unsparse(t, img)
			want, err := os.ReadFile(filepath.Join(rawOut, "product.img"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("simg2img of the sparse output (%d bytes) differs from the raw patch output (%d bytes)", len(got), len(want))
			}
			for _, name := range []string{"vbmeta.img"} {
				a, _ := os.ReadFile(filepath.Join(sparseOut, name))
				b, _ := os.ReadFile(filepath.Join(rawOut, name))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs between the sparse and raw outputs", name)
				}
			}
			if a := auditDir(t, pol, sparseOut); !a.Compliant {
				t.Fatalf("the patched sparse firmware fails the audit: %+v", a.Apps)
			}

			// the unsparsed output passes fsck and avbtool
			check := filepath.Join(fx.dir, "check")
			write(t, filepath.Join(check, "product.img"), got)
			vb, _ := os.ReadFile(filepath.Join(sparseOut, "vbmeta.img"))
			write(t, filepath.Join(check, "vbmeta.img"), vb)
			v := testtool.Avbtool(t, fx.ref, "verify_image", "--image", filepath.Join(check, "vbmeta.img"))
			if !strings.Contains(v, "Successfully verified sha256 hashtree") {
				t.Errorf("verify_image did not check the product hashtree:\n%s", v)
			}
			fsImg := filepath.Join(check, "fs.img")
			write(t, fsImg, got[:rp.SizeAfter])
			var fsck *exec.Cmd
			if format == "erofs" {
				fsck = exec.Command("fsck.erofs", fsImg)
			} else {
				fsck = exec.Command("e2fsck", "-fn", fsImg)
			}
			if out, err := fsck.CombinedOutput(); err != nil {
				t.Errorf("%s on the unsparsed output: %v\n%s", fsck.Args[0], err, out)
			}
		})
	}
}

// TestPatchCorruptSparse: a sparse product.img with a bad chunk header, a truncated one, and one
// whose CRC32 chunk does not match its data are refused with an error naming the file and the
// offset; nothing is written, not even a temporary directory.
func TestPatchCorruptSparse(t *testing.T) {
	fx := newFirmware(t, false, 0)
	pol, err := policy.Load(fx.policyPath)
	if err != nil {
		t.Fatal(err)
	}
	sfw := sparseCopy(t, fx, "sparse-fw")
	good, err := os.ReadFile(filepath.Join(sfw, "product.img"))
	if err != nil {
		t.Fatal(err)
	}
	// the same image with a CRC32 chunk, written by provkit's writer
	var crcImg bytes.Buffer
	raw := unsparse(t, filepath.Join(sfw, "product.img"))
	if err := sparse.Write(&crcImg, bytes.NewReader(raw), int64(len(raw)), 4096, sparse.WriteOptions{CRC: true}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func() []byte
		want   []string
		is     error
	}{
		{"bad chunk type", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint16(b[sparse.HeaderSize:], 0xBEEF)
			return b
		}, []string{"chunk 0 at offset 28", "unknown chunk type 0xBEEF"}, sparse.ErrCorrupt},
		{"truncated", func() []byte { return good[:len(good)-100] }, []string{"offset", "past the end"}, sparse.ErrCorrupt},
		{"crc mismatch", func() []byte {
			b := bytes.Clone(crcImg.Bytes())
			b[len(b)-16-100] ^= 0xFF // in the last RAW chunk: the AVB footer block
			return b
		}, []string{"offset", "CRC32"}, sparse.ErrChecksum},
	}
	for _, c := range cases {
		for _, dry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dry=%v", c.name, dry), func(t *testing.T) {
				write(t, filepath.Join(sfw, "product.img"), c.mutate())
				parent := t.TempDir()
				out := filepath.Join(parent, "out")
				_, err := Run(context.Background(), Options{Policy: pol, Input: sfw, Out: out, Signer: signer(t, fx.ref, "testkey_rsa2048.pem"), Inspector: inspector{}, DryRun: dry})
				if err == nil {
					t.Fatal("a corrupt sparse image was patched")
				}
				msg := err.Error()
				if !strings.Contains(msg, filepath.Join(sfw, "product.img")) || !errors.Is(err, c.is) {
					t.Errorf("error %q does not name %s or is not %v", msg, filepath.Join(sfw, "product.img"), c.is)
				}
				for _, w := range c.want {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q does not say %q", msg, w)
					}
				}
				if ents, _ := os.ReadDir(parent); len(ents) != 0 {
					t.Errorf("the failed patch left %v", ents)
				}
			})
		}
	}
}

// TestSparseCancel: a cancelled context stops the expansion and the sparse write, and neither
// leaves a file behind.
func TestSparseCancel(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte("data block "), 100000)[:1<<20]
	src := filepath.Join(dir, "in.img")
	var sb bytes.Buffer
	if err := sparse.Write(&sb, bytes.NewReader(raw), int64(len(raw)), 4096, sparse.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	write(t, src, sb.Bytes())
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := openSparse(ctx, src, tmp, false); !errors.Is(err, context.Canceled) {
		t.Errorf("expanding with a cancelled context: %v", err)
	}
	if _, err := openSparse(ctx, src, tmp, true); !errors.Is(err, context.Canceled) {
		t.Errorf("checking with a cancelled context: %v", err)
	}
	if err := writeSparse(ctx, filepath.Join(tmp, "out.img"), bytes.NewReader(raw), int64(len(raw)), 4096); !errors.Is(err, context.Canceled) {
		t.Errorf("writing with a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
	// and without cancellation the round trip holds
	s, err := openSparse(context.Background(), src, tmp, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.blockSize != 4096 || s.size != int64(len(raw)) {
		t.Fatalf("block size %d, size %d", s.blockSize, s.size)
	}
	out := filepath.Join(tmp, "out.img")
	if err := writeSparse(context.Background(), out, s.raw, s.size, 1024); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	st, _ := f.Stat()
	sim, err := sparse.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var back bytes.Buffer
	if _, err := sim.WriteTo(&back); err != nil || !bytes.Equal(back.Bytes(), raw) || sim.Header().BlockSize != 1024 {
		t.Errorf("round trip: %v, equal %v, block size %d", err, bytes.Equal(back.Bytes(), raw), sim.Header().BlockSize)
	}
	if err := writeSparse(context.Background(), filepath.Join(tmp, "odd.img"), s.raw, s.size-512, 4096); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a size that is not whole blocks: %v", err)
	}
}
