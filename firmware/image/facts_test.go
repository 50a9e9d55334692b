package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// samplePath finds a sample: the corpus copy under firmware/testdata/samples, or, for the sparse
// samples that package sparse owns, firmware/sparse/testdata.
func samplePath(file string) string {
	p := samplefacts.Path(file)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join("..", "sparse", "testdata", filepath.Base(file))
}

func sampleFacts(t *testing.T) map[string][]samplefacts.Fact {
	t.Helper()
	facts, err := samplefacts.Load(func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string][]samplefacts.Fact{}
	for _, f := range facts {
		byFile[f.File] = append(byFile[f.File], f)
	}
	// The sparse samples' facts live with package sparse.
	sp, err := samplefacts.LoadFile(filepath.Join("..", "sparse", "testdata", "facts.tsv"), func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sp {
		if _, ok := byFile[f.File]; !ok || !strings.HasPrefix(f.File, "aosp-gbl/sparse") && !strings.HasPrefix(f.File, "aosp-external-avb/") {
			if _, err := os.Stat(samplePath(f.File)); err != nil {
				continue
			}
		}
		byFile[f.File] = append(byFile[f.File], f)
	}
	return byFile
}

func partitionSHA256(t *testing.T, p *Partition) string {
	t.Helper()
	r, size, err := p.ReaderAt()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestSampleFacts opens every sample of the corpus the way `provkit image info` does and checks
// the end-to-end view against facts.tsv: the input kind and partition format, expanded sizes and
// digests through every container layer, logical and payload partitions, AVB footers, and the AVB
// verdicts (signature, key, and hash descriptors checked against the partition images they name,
// laid out as a directory of vbmeta.img + <partition>.img).
func TestSampleFacts(t *testing.T) {
	byFile := sampleFacts(t)
	if len(byFile) < 45 {
		t.Fatalf("only %d sample files", len(byFile))
	}
	asserted := 0
	ctx := context.Background()
	for file, facts := range byFile {
		path := samplePath(file)
		if _, err := os.Stat(path); err != nil {
			continue // a corpus file not copied into testdata (none is expected)
		}
		t.Run(file, func(t *testing.T) {
			im, err := Open(ctx, path, nil)
			if errors.Is(err, ErrNotFirmware) && rawSample(facts) {
				// A raw partition image is read once its partition is named (--partition).
				name, _ := partitionName(filepath.Base(path))
				im, err = Open(ctx, path, &Options{Partition: name})
			}
			if err != nil {
				t.Fatalf("image info cannot read %s: %v", file, err)
			}
			defer im.Close()
			if err := im.Load(); err != nil {
				t.Fatal(err)
			}
			for _, p := range im.Partitions {
				if p.Err != nil && !Unsupported(p.Err) {
					t.Fatalf("partition %s: %v", p.Source, p.Err)
				}
			}
			first := im.Partitions[0]
			avbRep, err := im.VerifyAVB(ctx, AVBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			root := func() *avb.Report {
				for _, r := range avbRep.Roots {
					if r.Partition == first.Name {
						return r.Report
					}
				}
				t.Fatalf("no AVB report for %s: %+v", first.Name, avbRep)
				return nil
			}
			for _, f := range facts {
				check := func(ok bool, got any) {
					t.Helper()
					asserted++
					if !ok {
						t.Errorf("line %d: %s = %s, image info says %v", f.Line, f.Key, f.Value, got)
					}
				}
				switch f.Key {
				case "size_bytes":
					check(strconv.FormatInt(im.Size, 10) == f.Value, im.Size)
				case "format":
					want := map[string]struct {
						kind   Kind
						format Format
					}{
						"android-sparse":             {KindPartition, FormatRaw},
						"android-lp-super":           {KindSuper, FormatSuper},
						"avb-vbmeta":                 {KindPartition, FormatVBMeta},
						"android-boot-image":         {KindPartition, FormatBoot},
						"android-vendor-boot-image":  {KindPartition, FormatVendorBoot},
						"android DT table image":     {KindPartition, FormatDTTable},
						"android-ota-payload":        {KindPayload, ""},
						"zip: A/B OTA package":       {KindOTAZip, ""},
						"raw reference":              {KindPartition, FormatRaw},
						"raw partition image":        {KindPartition, FormatRaw},
						"Fuchsia ZBI":                {KindPartition, FormatRaw},
						"tar.bz2":                    {KindPartition, FormatRaw},
						"android-lp-super (empty":    {KindSuper, FormatSuper},
						"android-lp-super (full":     {KindSuper, FormatSuper},
						"android DT table image (mk": {KindPartition, FormatDTTable},
					}
					matched := false
					for prefix, w := range want {
						if strings.HasPrefix(f.Value, prefix) {
							matched = true
							ok := im.Kind == w.kind && (w.format == "" || first.Format == w.format)
							check(ok, string(im.Kind)+"/"+string(first.Format))
							break
						}
					}
					if !matched {
						t.Errorf("line %d: no expectation for format %q", f.Line, f.Value)
					}
					if strings.HasPrefix(f.Value, "android-sparse") {
						check(contains(first.Layers, layerSparse), first.Layers)
					}
				case "unsparsed_size":
					check(strconv.FormatInt(first.Size, 10) == f.Value, first.Size)
				case "unsparsed_sha256":
					got := partitionSHA256(t, first)
					check(got == f.Value, got)
				case "avb.footer.original_image_size", "avb.footer.vbmeta_offset", "avb.footer.vbmeta_size":
					if first.Footer == nil {
						check(false, "no footer")
						break
					}
					got := map[string]uint64{"avb.footer.original_image_size": first.Footer.OriginalImageSize,
						"avb.footer.vbmeta_offset": first.Footer.VBMetaOffset, "avb.footer.vbmeta_size": first.Footer.VBMetaSize}[f.Key]
					check(strconv.FormatUint(got, 10) == f.Value, got)
				case "avb.algorithm":
					r := root()
					check(r.Signature.Algorithm == f.Value, r.Signature.Algorithm)
					if f.Value == "NONE" {
						// Unsigned vbmeta: never reported as verified.
						check(avbRep.State == AVBFailed, avbRep.State)
					}
				case "avb.public_key_sha1":
					r := root()
					check(r.Signature.KeySHA1 == f.Value, r.Signature.KeySHA1)
				case "avb.signature_rsa_pkcs1_ok":
					r := root()
					ok := r.Signature.SignatureOK && r.Signature.AuthHashOK
					check(strconv.FormatBool(ok) == strings.ToLower(f.Value), ok)
					if ok {
						// Signed and nothing present mismatches: the whole input verifies.
						check(avbRep.State == AVBVerified, avbRep)
					}
				case "avb.hash_descriptor_verifies_file":
					// "boot -> aosp-gbl/android/boot_v0_a.img: True"
					m := regexp.MustCompile(`^(\S+) -> (\S+): (True|False)$`).FindStringSubmatch(f.Value)
					if m == nil {
						t.Fatalf("line %d: unparsed %q", f.Line, f.Value)
					}
					dir := t.TempDir()
					copyFile(t, path, filepath.Join(dir, "vbmeta.img"))
					copyFile(t, samplePath(m[2]), filepath.Join(dir, m[1]+".img"))
					dim, err := Open(ctx, dir, nil)
					if err != nil {
						t.Fatal(err)
					}
					rep, err := dim.VerifyAVB(ctx, AVBOptions{})
					dim.Close()
					if err != nil {
						t.Fatal(err)
					}
					status := ""
					for _, d := range rep.Roots[0].Report.Descriptors {
						if d.Partition == m[1] {
							status = string(d.Status)
						}
					}
					check((status == string(avb.StatusVerified)) == (m[3] == "True"), status)
				case "bootimg.header_version":
					check(strings.Contains(first.Detail, "header v"+f.Value), first.Detail)
				case "payload.partition":
					// "kernel new_size=4194304 new_sha256=... ops=REPLACE_BZ:2"
					fields := strings.Fields(f.Value)
					p := im.Lookup(fields[0])
					if p == nil {
						check(false, im.Names())
						break
					}
					kv := map[string]string{}
					for _, fl := range fields[1:] {
						k, v, _ := strings.Cut(fl, "=")
						kv[k] = v
					}
					check(strconv.FormatInt(p.Size, 10) == kv["new_size"], p.Size)
					if _, _, err := p.ReaderAt(); err == nil {
						// Readable (squashfs content too, as raw bytes): the bytes decoded through
						// the payload's operations hash to new_partition_info.
						got := partitionSHA256(t, p)
						check(got == kv["new_sha256"], got)
					} else {
						check(Unsupported(p.Err) && strings.Contains(kv["ops"], "DIFF") || strings.Contains(kv["ops"], "SOURCE"), p.Err)
					}
				default:
					if m := regexp.MustCompile(`^lp\.slot0\.partition$`).MatchString(f.Key); m {
						// "system_a size=8192 attrs=1 ..."
						fields := strings.Fields(f.Value)
						name, slot := splitSlot(fields[0])
						size := strings.TrimPrefix(fields[1], "size=")
						found := false
						for _, p := range im.Partitions {
							if p.Name == name && p.Slot == slot && strconv.FormatInt(p.Size, 10) == size {
								found = true
							}
						}
						if !strings.Contains(f.File, "super_empty") {
							check(found, im.Partitions)
						} else {
							check(strings.Contains(first.Detail, fields[0]), first.Detail)
						}
					}
				}
			}
		})
	}
	if asserted < 150 {
		t.Fatalf("only %d facts asserted end to end", asserted)
	}
	t.Logf("%d facts asserted end to end over %d files", asserted, len(byFile))
}

// rawSample reports whether the facts say a sample is raw data in no format provkit reads.
func rawSample(facts []samplefacts.Fact) bool {
	for _, f := range facts {
		if f.Key == "format" {
			for _, p := range []string{"raw reference", "raw partition image", "Fuchsia ZBI", "tar.bz2"} {
				if strings.HasPrefix(f.Value, p) {
					return true
				}
			}
		}
	}
	return false
}
