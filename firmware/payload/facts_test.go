package payload

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// payloadFiles are the samples whose payload/OTA facts this package owns.
func payloadFiles(t *testing.T) map[string]bool {
	files, err := samplefacts.FilesWith(func(f samplefacts.Fact) bool {
		return strings.HasPrefix(f.Key, "payload.") || strings.HasPrefix(f.Key, "ota.") || f.Key == "tar.member"
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

type tarMember struct {
	size   int
	sha256 string
	data   []byte
}

// sampleImages extracts sample_images.tar.bz2, the images the update_engine payloads were made from.
func sampleImages(t testing.TB) map[string]tarMember {
	f, err := os.Open(samplefacts.Path("aosp-update-engine/sample_images.tar.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(bzip2.NewReader(f))
	m := map[string]tarMember{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeGNUSparse {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		name := h.Name[strings.LastIndex(h.Name, "/")+1:]
		m[name] = tarMember{len(b), hex.EncodeToString(s[:]), b}
	}
	return m
}

func openPayloadSample(t testing.TB, file string) (*Payload, *OTA) {
	f, err := os.Open(samplefacts.Path(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	if strings.HasSuffix(file, ".zip") {
		o, err := OpenOTA(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		return o.Payload, o
	}
	p, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return p, nil
}

func TestSampleFacts(t *testing.T) {
	files := payloadFiles(t)
	facts, err := samplefacts.Load(func(f string) bool { return files[f] })
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) < 150 {
		t.Fatalf("only %d payload facts", len(facts))
	}
	members := sampleImages(t)
	type fk struct{ file, key string }
	multi := map[fk][]string{}
	for _, f := range facts {
		multi[fk{f.File, f.Key}] = append(multi[fk{f.File, f.Key}], f.Value)
	}
	for _, fact := range facts {
		t.Run(fmt.Sprintf("%d/%s/%s", fact.Line, fact.File, fact.Key), func(t *testing.T) {
			if ok, err := samplefacts.Provenance(fact); ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.HasSuffix(fact.File, ".tar.bz2") {
				switch {
				case fact.Key == "format" && strings.HasPrefix(fact.Value, "tar.bz2"):
					if len(members) != 7 {
						t.Fatalf("%d tar members", len(members))
					}
				case fact.Key == "tar.member":
					name, _, _ := strings.Cut(fact.Value, " ")
					m := members[name]
					if got := fmt.Sprintf("%s size=%d sha256=%s", name, m.size, m.sha256); got != fact.Value {
						t.Fatalf("got %q, want %q", got, fact.Value)
					}
				default:
					t.Fatalf("unknown fact %s=%s", fact.Key, fact.Value)
				}
				return
			}
			p, o := openPayloadSample(t, fact.File)
			var got string
			var err error
			switch fact.Key {
			case "payload.partition", "payload.dynamic_group":
				var all []string
				if fact.Key == "payload.partition" {
					for _, pu := range p.Manifest.Partitions {
						all = append(all, partitionFact(&pu))
					}
				} else {
					for _, g := range p.Manifest.Dynamic.Groups {
						parts := strings.Join(g.Partitions, ",")
						if parts == "" {
							parts = "(none)"
						}
						all = append(all, fmt.Sprintf("%s size=%d partitions=%s", g.Name, g.Size, parts))
					}
				}
				if strings.Join(all, "\n") != strings.Join(multi[fk{fact.File, fact.Key}], "\n") {
					t.Fatalf("got %q, want %q", all, multi[fk{fact.File, fact.Key}])
				}
				return
			}
			if strings.HasPrefix(fact.Key, "ota.") || fact.Key == "zip.entries" || fact.Key == "format" {
				got, err = otaFact(t, p, o, fact)
			} else {
				got, err = payloadFact(t, p, fact, members)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != fact.Value {
				t.Fatalf("%s: got %q, want %q", fact.Key, got, fact.Value)
			}
		})
	}
}

func partitionFact(pu *PartitionUpdate) string {
	s := fmt.Sprintf("%s new_size=%d new_sha256=%x", pu.Name, pu.New.Size, pu.New.Hash)
	if pu.Old != nil {
		s += fmt.Sprintf(" old_size=%d old_sha256=%x", pu.Old.Size, pu.Old.Hash)
	}
	return s + " ops=" + pu.OpCounts()
}

func payloadFact(t *testing.T, p *Payload, fact samplefacts.Fact, members map[string]tarMember) (string, error) {
	m := p.Manifest
	b01 := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	switch fact.Key {
	case "payload.major_version":
		return fmt.Sprint(p.MajorVersion), nil
	case "payload.manifest_size":
		return fmt.Sprint(p.ManifestSize), nil
	case "payload.metadata_signature_size":
		return fmt.Sprint(p.MetadataSignatureSize), nil
	case "payload.minor_version":
		return fmt.Sprint(m.MinorVersion), nil
	case "payload.block_size":
		return fmt.Sprint(m.BlockSize), nil
	case "payload.max_timestamp":
		return fmt.Sprint(m.MaxTimestamp), nil
	case "payload.partial_update":
		return b01(m.PartialUpdate), nil
	case "payload.metadata_sha256":
		h, err := p.MetadataSHA256()
		return hex.EncodeToString(h), err
	case "payload.dynamic.snapshot_enabled":
		return b01(m.Dynamic.SnapshotEnabled), nil
	case "payload.dynamic.vabc_enabled":
		return b01(m.Dynamic.VABCEnabled), nil
	case "payload.dynamic.vabc_compression_param":
		return m.Dynamic.VABCCompressionParam, nil
	case "payload.dynamic.cow_version":
		return fmt.Sprint(m.Dynamic.COWVersion), nil
	case "payload.signature_count", "payload.signature_sizes":
		sigs, err := p.Signatures()
		if err != nil {
			return "", err
		}
		if fact.Key == "payload.signature_count" {
			return fmt.Sprint(len(sigs)), nil
		}
		var sizes []string
		for _, s := range sigs {
			sizes = append(sizes, fmt.Sprint(len(s.Data)))
		}
		return "[" + strings.Join(sizes, ", ") + "]", nil
	}
	// payload.<partition>.<check>
	rest := strings.TrimPrefix(fact.Key, "payload.")
	name, check, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("unknown fact key %q", fact.Key)
	}
	pu, ok := p.Partition(name)
	if !ok {
		return "", fmt.Errorf("no partition %q", name)
	}
	switch check {
	case "full_ops_reconstruct_matches_new_sha256":
		err := p.VerifyPartition(context.Background(), name)
		return pyBool(err == nil), err
	case "new_image_equals_tar_member", "old_image_equals_tar_member":
		member, ok := members[fact.Value]
		if !ok {
			return "", fmt.Errorf("no tar member %q", fact.Value)
		}
		info := pu.New
		if check == "old_image_equals_tar_member" {
			info = pu.Old
		}
		if hex.EncodeToString(info.Hash) != member.sha256 || info.Size != uint64(member.size) {
			return "", fmt.Errorf("declared %d bytes %x, member %s is %d bytes %s", info.Size, info.Hash, fact.Value, member.size, member.sha256)
		}
		if check == "new_image_equals_tar_member" {
			pr, err := p.OpenPartition(name)
			if pu.IsDelta() {
				// The bytes cannot be rebuilt without the source build: the payload must say so.
				if err == nil || !strings.Contains(err.Error(), "delta payload: needs the source build") {
					return "", fmt.Errorf("delta partition %q opened: %v", name, err)
				}
				return fact.Value, nil
			}
			if err != nil {
				return "", err
			}
			got, err := io.ReadAll(io.NewSectionReader(pr, 0, pr.Size()))
			if err != nil {
				return "", err
			}
			if !bytes.Equal(got, member.data) {
				return "", fmt.Errorf("partition %q read from the payload differs from %s", name, fact.Value)
			}
		}
		return fact.Value, nil
	}
	return "", fmt.Errorf("unknown fact key %q", fact.Key)
}

func otaFact(t *testing.T, p *Payload, o *OTA, fact samplefacts.Fact) (string, error) {
	if fact.Key == "format" {
		if o == nil {
			return "android-ota-payload (CrAU)", nil
		}
		if o.file("META-INF/com/android/otacert") != nil && o.file("META-INF/CERT.RSA") == nil && o.Metadata["ota-type"] == "AB" {
			// signed by SignApk: the whole-file signature sits in the zip comment (no JAR META-INF/CERT files).
			return "zip: A/B OTA package (ota_from_target_files output, signed by SignApk)", nil
		}
		return "", fmt.Errorf("unexpected OTA zip layout")
	}
	if o == nil {
		return "", fmt.Errorf("OTA fact %s on a bare payload", fact.Key)
	}
	switch fact.Key {
	case "zip.entries":
		return strings.Join(o.Entries, " "), nil
	case "ota.payload_offset_in_zip":
		return fmt.Sprint(o.PayloadOffset), nil
	case "ota.payload_stored_uncompressed":
		return "True", nil // OpenOTA refuses a compressed payload.bin
	case "ota.FILE_HASH_matches", "ota.METADATA_HASH_matches":
		c, err := o.CheckProperties(context.Background())
		if err != nil {
			return "", err
		}
		if fact.Key == "ota.FILE_HASH_matches" {
			return pyBool(c.FileHashOK && c.FileSizeOK), nil
		}
		return pyBool(c.MetadataHashOK && c.MetadataSizeOK), nil
	case "ota.metadata.ota-property-files":
		if err := o.CheckPropertyFiles(); err != nil {
			return "", err
		}
		return strings.TrimSpace(o.Metadata["ota-property-files"]), nil
	}
	if k, ok := strings.CutPrefix(fact.Key, "ota.metadata."); ok {
		return o.Metadata[k], nil
	}
	if k, ok := strings.CutPrefix(fact.Key, "ota.payload_properties."); ok {
		return o.Properties[k], nil
	}
	return "", fmt.Errorf("unknown fact key %q", fact.Key)
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
