package avb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// avbFiles are the samples whose AVB facts this package owns: every file with an avb.* fact, plus
// the ZBI that a vbmeta hash descriptor covers.
func avbFiles(t *testing.T) map[string]bool {
	files, err := samplefacts.FilesWith(func(f samplefacts.Fact) bool {
		return strings.HasPrefix(f.Key, "avb.") || f.Key == "format.avb"
	})
	if err != nil {
		t.Fatal(err)
	}
	files["aosp-gbl/zircon_a.zbi"] = true
	return files
}

// ownedElsewhere reports facts about AVB samples that firmware/bootimg asserts (boot image headers).
func ownedElsewhere(f samplefacts.Fact) bool {
	return strings.HasPrefix(f.Key, "bootimg.") || (f.Key == "format.container" && f.Value == "android-boot-image")
}

func openSample(t testing.TB, file string) (*os.File, int64) {
	f, err := os.Open(samplefacts.Path(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

func lookupFiles(t testing.TB, m map[string]string) PartitionLookup {
	return func(name string) (io.ReaderAt, int64, bool) {
		file, ok := m[name]
		if !ok {
			return nil, 0, false
		}
		f, size := openSample(t, file)
		return f, size, true
	}
}

// TestSampleFacts asserts every fact of facts.tsv about the AVB samples.
func TestSampleFacts(t *testing.T) {
	files := avbFiles(t)
	facts, err := samplefacts.Load(func(f string) bool { return files[f] })
	if err != nil {
		t.Fatal(err)
	}
	kept := facts[:0]
	for _, f := range facts {
		if !ownedElsewhere(f) {
			kept = append(kept, f)
		}
	}
	facts = kept
	if len(facts) < 400 {
		t.Fatalf("only %d AVB facts", len(facts))
	}
	// Multi-valued keys are compared as multisets per (file, key).
	type fk struct{ file, key string }
	multi := map[fk][]string{}
	for _, fact := range facts {
		if fact.Key == "avb.descriptor" || fact.Key == "avb.hash_descriptor_verifies_file" {
			multi[fk{fact.File, fact.Key}] = append(multi[fk{fact.File, fact.Key}], fact.Value)
		}
	}
	for _, fact := range facts {
		t.Run(fmt.Sprintf("%d/%s/%s", fact.Line, fact.File, fact.Key), func(t *testing.T) {
			if ok, err := samplefacts.Provenance(fact); ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if fact.File == "(keys)" {
				checkKeyFact(t, files, fact)
				return
			}
			if fact.File == "aosp-gbl/zircon_a.zbi" {
				// A Fuchsia ZBI container, covered by the zircon hash descriptor of vbmeta_a.bin.
				b, _ := os.ReadFile(samplefacts.Path(fact.File))
				if fact.Key != "format" || !strings.Contains(fact.Value, "ZBI") || string(b[:4]) != "BOOT" || !bytes.Equal(b[8:12], []byte{0xe6, 0xf7, 0x8c, 0x86}) {
					t.Fatalf("unknown fact %s=%s or not a ZBI container", fact.Key, fact.Value)
				}
				return
			}
			r, size := openSample(t, fact.File)
			im, err := Open(r, size)
			if err != nil {
				t.Fatal(err)
			}
			if fact.Key == "avb.descriptor" {
				var got []string
				for _, d := range im.VBMeta.Descriptors {
					got = append(got, descriptorFact(d))
				}
				want := multi[fk{fact.File, fact.Key}]
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("descriptors:\n got %q\nwant %q", got, want)
				}
				return
			}
			got, err := avbFact(t, im, fact)
			if err != nil {
				t.Fatal(err)
			}
			if got != fact.Value {
				t.Fatalf("%s: got %q, want %q", fact.Key, got, fact.Value)
			}
		})
	}
}

func avbFact(t *testing.T, im *Image, fact samplefacts.Fact) (string, error) {
	v := im.VBMeta
	sig := v.VerifySignature()
	switch fact.Key {
	case "format":
		if im.Footer == nil {
			return "avb-vbmeta (AVB0)", nil
		}
		return "", fmt.Errorf("format fact on a footed image")
	case "format.avb":
		if im.Footer != nil {
			return "avb-footer (AVBf) + vbmeta", nil
		}
		return "vbmeta", nil
	case "format.container":
		// ext4 carrying an AVB hash footer: the superblock magic 0xEF53 at byte 1080.
		b := make([]byte, 2)
		im.R.ReadAt(b, 1080)
		if strings.HasPrefix(fact.Value, "ext4") && b[0] == 0x53 && b[1] == 0xef && im.Footer != nil {
			return fact.Value, nil
		}
		return "", fmt.Errorf("format.container %q is not this package's to check", fact.Value)
	case "avb.footer.version":
		return im.Footer.Version(), nil
	case "avb.footer.original_image_size":
		return fmt.Sprint(im.Footer.OriginalImageSize), nil
	case "avb.footer.vbmeta_offset":
		return fmt.Sprint(im.Footer.VBMetaOffset), nil
	case "avb.footer.vbmeta_size":
		return fmt.Sprint(im.Footer.VBMetaSize), nil
	case "avb.required_libavb_version":
		return v.RequiredVersion(), nil
	case "avb.algorithm":
		return v.Algorithm.String(), nil
	case "avb.rollback_index":
		return fmt.Sprint(v.RollbackIndex), nil
	case "avb.rollback_index_location":
		return fmt.Sprint(v.RollbackIndexLocation), nil
	case "avb.flags":
		return fmt.Sprint(v.Flags), nil
	case "avb.release_string":
		return v.ReleaseString, nil
	case "avb.authentication_block_size":
		return fmt.Sprint(v.AuthBlockSize), nil
	case "avb.auxiliary_block_size":
		return fmt.Sprint(v.AuxBlockSize), nil
	case "avb.public_key_bits":
		k, err := ParsePublicKey(v.PublicKey)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(k.Bits), nil
	case "avb.public_key_sha1":
		return sig.KeySHA1, nil
	case "avb.public_key_metadata_size":
		return fmt.Sprint(len(v.PublicKeyMetadata)), nil
	case "avb.public_key_metadata_sha256":
		s := sha256.Sum256(v.PublicKeyMetadata)
		return hex.EncodeToString(s[:]), nil
	case "avb.auth_hash_ok":
		return pyBool(sig.AuthHashOK), nil
	case "avb.signature_rsa_pkcs1_ok":
		return pyBool(sig.SignatureOK), nil
	case "avb.descriptor_count":
		return fmt.Sprint(len(v.Descriptors)), nil
	case "avb.footer_hash_descriptor_verifies_image":
		rep, err := im.Verify(context.Background(), nil)
		if err != nil {
			return "", err
		}
		ok := false
		for _, d := range rep.Descriptors {
			if d.Kind == "hash" {
				ok = d.Status == StatusVerified && d.Source == "this image"
			}
		}
		return pyBool(ok), nil
	case "avb.hash_descriptor_verifies_file":
		name, rest, _ := strings.Cut(fact.Value, " -> ")
		file, _, _ := strings.Cut(rest, ": ")
		rep, err := im.Verify(context.Background(), &VerifyOptions{Partitions: lookupFiles(t, map[string]string{name: file})})
		if err != nil {
			return "", err
		}
		for _, d := range rep.Descriptors {
			if d.Kind == "hash" && d.Partition == name {
				return fmt.Sprintf("%s -> %s: %s", name, file, pyBool(d.Status == StatusVerified)), nil
			}
		}
		return "", fmt.Errorf("no hash descriptor for %q", name)
	case "avb.hashtree_root_digest_recomputed_ok", "avb.hashtree_stored_tree_matches_recomputed":
		for _, d := range v.Descriptors {
			if ht, ok := d.(*Hashtree); ok {
				res, err := VerifyHashtree(context.Background(), ht, im.R, im.Size)
				if err != nil {
					return "", err
				}
				if fact.Key == "avb.hashtree_root_digest_recomputed_ok" {
					return pyBool(res.RootOK), nil
				}
				return pyBool(res.StoredTreeOK), nil
			}
		}
		return "", fmt.Errorf("no hashtree descriptor")
	}
	return "", fmt.Errorf("unknown fact key %q", fact.Key)
}

func descriptorFact(d Descriptor) string {
	switch d := d.(type) {
	case *Property:
		return "property " + d.Key + "=" + propValue(d.Value)
	case *Hash:
		return fmt.Sprintf("hash partition=%s image_size=%d alg=%s salt=%x digest=%x flags=%d", orEmpty(d.PartitionName), d.ImageSize, d.HashAlgorithm, d.Salt, d.Digest, d.Flags)
	case *Hashtree:
		return fmt.Sprintf("hashtree partition=%s image_size=%d tree_offset=%d tree_size=%d data_block=%d hash_block=%d fec_roots=%d fec_size=%d alg=%s salt=%x root_digest=%x flags=%d",
			orEmpty(d.PartitionName), d.ImageSize, d.TreeOffset, d.TreeSize, d.DataBlockSize, d.HashBlockSize, d.FECNumRoots, d.FECSize, d.HashAlgorithm, d.Salt, d.RootDigest, d.Flags)
	case *KernelCmdline:
		return fmt.Sprintf("kernel_cmdline flags=%d cmdline=%s", d.Flags, d.Cmdline)
	case *ChainPartition:
		s1, _ := KeyDigests(d.PublicKey)
		return fmt.Sprintf("chain_partition partition=%s rollback_index_location=%d public_key_len=%d public_key_sha1=%s", d.PartitionName, d.RollbackIndexLocation, len(d.PublicKey), s1)
	}
	return fmt.Sprintf("unknown tag=%d", d.Tag())
}

func propValue(v []byte) string {
	printable := utf8.Valid(v)
	for _, r := range string(v) {
		if r < 0x20 || r == 0x7f {
			printable = false
		}
	}
	switch {
	case printable:
		return string(v)
	case len(v) > 1024:
		return fmt.Sprintf("(%d bytes)", len(v))
	}
	return hex.EncodeToString(v)
}

func orEmpty(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// checkKeyFact checks a "(keys)" row: some sample is signed with the key of that SHA-1, and that key
// decodes as a consistent 4096-bit AVB public key.
func checkKeyFact(t *testing.T, files map[string]bool, fact samplefacts.Fact) {
	want := strings.TrimPrefix(fact.Key, "avb.public_key_sha1 ")
	if want == fact.Key || !strings.Contains(fact.Value, "AVB public-key blob") {
		t.Fatalf("unknown fact %s=%s", fact.Key, fact.Value)
	}
	for file := range files {
		if file == "(keys)" || strings.HasSuffix(file, ".zbi") {
			continue
		}
		r, size := openSample(t, file)
		im, err := Open(r, size)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if s1, _ := KeyDigests(im.VBMeta.PublicKey); s1 == want {
			k, err := ParsePublicKey(im.VBMeta.PublicKey)
			if err != nil || k.Bits != 4096 {
				t.Fatalf("%s: key %s: %v", file, want, err)
			}
			return
		}
	}
	t.Fatalf("no sample is signed with the key of SHA-1 %s", want)
}
