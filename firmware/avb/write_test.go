package avb

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

func referenceTools(t testing.TB) string { t.Helper(); return testtool.ReferenceTools(t) }

func avbtool(t testing.TB, ref string, args ...string) string {
	t.Helper()
	return testtool.Avbtool(t, ref, args...)
}

func loadSigner(t testing.TB, ref, name, alg string) Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ref, name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k, alg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fsImage returns n bytes of deterministic non-zero data standing in for a file system image.
func fsImage(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}

// TestHashtreeFooterMatchesAvbtool writes the same image with avbtool add_hashtree_footer and with
// AddHashtreeFooter (same key, salt, partition size and release string) and wants identical bytes;
// then builds a vbmeta.img and has avbtool verify_image it.
func TestHashtreeFooterMatchesAvbtool(t *testing.T) {
	ref := referenceTools(t)
	for _, tc := range []struct {
		key, alg string
		size     int
	}{
		{"testkey_rsa2048.pem", "SHA256_RSA2048", 300*1024 + 17}, // not block aligned
		{"testkey_rsa4096.pem", "SHA512_RSA4096", 1 << 20},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			dir := t.TempDir()
			data := fsImage(tc.size)
			const partSize = 2 << 20
			salt := bytes.Repeat([]byte{0xab}, 32)
			theirs := filepath.Join(dir, "theirs.img")
			if err := os.WriteFile(theirs, data, 0o644); err != nil {
				t.Fatal(err)
			}
			avbtool(t, ref, "add_hashtree_footer", "--do_not_generate_fec", "--image", theirs,
				"--partition_name", "product", "--partition_size", "2097152", "--hash_algorithm", "sha256", "--salt", strings.Repeat("ab", 32),
				"--key", filepath.Join(ref, tc.key), "--algorithm", tc.alg, "--internal_release_string", "provkit-test")
			want, err := os.ReadFile(theirs)
			if err != nil {
				t.Fatal(err)
			}

			ours := filepath.Join(dir, "product.img")
			f, err := os.Create(ours)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(data); err != nil {
				t.Fatal(err)
			}
			s := loadSigner(t, ref, tc.key, tc.alg)
			d, size, err := AddHashtreeFooter(context.Background(), f, int64(len(data)), FooterOptions{
				PartitionName: "product", PartitionSize: partSize, Salt: salt,
				VBMeta: VBMetaOptions{ReleaseString: "provkit-test"},
			}, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(ours)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				n := 0
				for n < len(got) && n < len(want) && got[n] == want[n] {
					n++
				}
				t.Fatalf("provkit's image (%d bytes) differs from avbtool's (%d bytes) from offset %d", len(got), len(want), n)
			}

			// a vbmeta partition describing it, with a property and a rollback index kept
			vb, err := BuildVBMeta(VBMetaOptions{
				Descriptors:   []Descriptor{&Property{Key: "com.example.k", Value: []byte("v")}, d},
				RollbackIndex: 7,
			}, s)
			if err != nil {
				t.Fatal(err)
			}
			vbPath := filepath.Join(dir, "vbmeta.img")
			if err := os.WriteFile(vbPath, vb, 0o644); err != nil {
				t.Fatal(err)
			}
			out := avbtool(t, ref, "verify_image", "--image", vbPath)
			if !strings.Contains(out, "vbmeta: Successfully verified "+tc.alg) ||
				!strings.Contains(out, "product: Successfully verified sha256 hashtree") {
				t.Errorf("avbtool verify_image:\n%s", out)
			}
			info := avbtool(t, ref, "info_image", "--image", vbPath)
			for _, w := range []string{"Rollback Index:           7", "Prop: com.example.k -> 'v'", "Partition Name:        product", "Algorithm:                " + tc.alg} {
				if !strings.Contains(info, w) {
					t.Errorf("info_image lacks %q:\n%s", w, info)
				}
			}
		})
	}
}

// TestHashFooterMatchesAvbtool does the same for a hash footer.
func TestHashFooterMatchesAvbtool(t *testing.T) {
	ref := referenceTools(t)
	dir := t.TempDir()
	data := fsImage(70*1024 + 3)
	theirs := filepath.Join(dir, "theirs.img")
	if err := os.WriteFile(theirs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	avbtool(t, ref, "add_hash_footer", "--image", theirs, "--partition_name", "boot", "--partition_size", "262144",
		"--salt", "0102", "--key", filepath.Join(ref, "testkey_rsa2048.pem"), "--algorithm", "SHA256_RSA2048",
		"--internal_release_string", "provkit-test")
	want, _ := os.ReadFile(theirs)
	f, err := os.Create(filepath.Join(dir, "boot.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(data)
	_, size, err := AddHashFooter(context.Background(), f, int64(len(data)), FooterOptions{
		PartitionName: "boot", PartitionSize: 262144, Salt: []byte{1, 2}, VBMeta: VBMetaOptions{ReleaseString: "provkit-test"},
	}, loadSigner(t, ref, "testkey_rsa2048.pem", ""))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, want) {
		t.Fatalf("provkit's hash-footed image (%d bytes) differs from avbtool's (%d bytes)", len(got), len(want))
	}
}

// TestRebuildKeepsEverything has avbtool make a vbmeta with every kind of descriptor, rebuilds it
// from OptionsOf with the same key, and wants the same bytes (RSA PKCS#1 v1.5 is deterministic).
func TestRebuildKeepsEverything(t *testing.T) {
	ref := referenceTools(t)
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot.img")
	os.WriteFile(boot, fsImage(8192), 0o644)
	avbtool(t, ref, "add_hash_footer", "--image", boot, "--partition_name", "boot", "--partition_size", "131072", "--salt", "00")
	pub := filepath.Join(dir, "pub.bin")
	avbtool(t, ref, "extract_public_key", "--key", filepath.Join(ref, "testkey_rsa4096.pem"), "--output", pub)
	vbPath := filepath.Join(dir, "vbmeta.img")
	avbtool(t, ref, "make_vbmeta_image", "--output", vbPath, "--key", filepath.Join(ref, "testkey_rsa2048.pem"),
		"--algorithm", "SHA256_RSA2048", "--rollback_index", "42", "--rollback_index_location", "2",
		"--prop", "a:b", "--prop", "com.android.build.product.os_version:14", "--kernel_cmdline", "quiet x=1",
		"--chain_partition", "vbmeta_system:1:"+pub, "--include_descriptors_from_image", boot,
		"--flags", "0", "--internal_release_string", "avbtool 1.3.0")
	want, _ := os.ReadFile(vbPath)
	im, err := Open(bytes.NewReader(want), int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := BuildVBMeta(OptionsOf(im.VBMeta), loadSigner(t, ref, "testkey_rsa2048.pem", ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rebuilt vbmeta (%d bytes) differs from avbtool's (%d bytes)", len(got), len(want))
	}
}

func TestSignerChecks(t *testing.T) {
	ref := referenceTools(t)
	b, _ := os.ReadFile(filepath.Join(ref, "testkey_rsa2048.pem"))
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(k, "SHA256_RSA4096"); err == nil || !strings.Contains(err.Error(), "4096-bit") {
		t.Errorf("2048-bit key with SHA256_RSA4096: %v", err)
	}
	if _, err := NewSigner(k, "MD5_RSA2048"); err == nil {
		t.Error("unknown algorithm accepted")
	}
	if _, err := ParsePrivateKeyPEM([]byte("nothing")); err == nil {
		t.Error("non-PEM accepted")
	}
}
