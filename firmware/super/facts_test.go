package super

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// TestSampleFacts asserts every fact of facts.tsv about the LP samples.
func TestSampleFacts(t *testing.T) {
	facts, err := samplefacts.Load(func(f string) bool { return strings.HasPrefix(f, "aosp-system-core/") })
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) < 60 {
		t.Fatalf("only %d facts for the LP samples", len(facts))
	}
	images := map[string]*Image{}
	open := func(file string) *Image {
		if im, ok := images[file]; ok {
			return im
		}
		f, err := os.Open(samplefacts.Path(file))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		st, _ := f.Stat()
		im, err := Open(f, st.Size(), nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		images[file] = im
		return im
	}
	// Multi-valued keys: collect what we decode and compare as sets per (file, key).
	for _, fact := range facts {
		t.Run(fmt.Sprintf("%d/%s/%s", fact.Line, fact.File, fact.Key), func(t *testing.T) {
			if ok, err := samplefacts.Provenance(fact); ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if fact.File == "aosp-system-core/system.img" {
				if fact.Key != "format" || !strings.HasPrefix(fact.Value, "raw partition image") {
					t.Fatalf("unknown fact %s=%s", fact.Key, fact.Value)
				}
				// A raw partition: no LP geometry anywhere.
				f, _ := os.ReadFile(samplefacts.Path(fact.File))
				if _, err := Open(bytes.NewReader(f), int64(len(f)), nil); err != ErrNotSuper {
					t.Fatalf("Open(raw) = %v, want ErrNotSuper", err)
				}
				return
			}
			im := open(fact.File)
			got, err := superFact(t, im, fact)
			if err != nil {
				t.Fatal(err)
			}
			if got != fact.Value {
				t.Fatalf("%s: got %q, want %q", fact.Key, got, fact.Value)
			}
		})
	}
}

func superFact(t *testing.T, im *Image, fact Fact) (string, error) {
	key := fact.Key
	switch key {
	case "format":
		if im.Layout == LayoutFull {
			return fmt.Sprintf("android-lp-super (full (geometry@%d, backup geometry@%d, metadata@%d))", im.Geometry.Offset, im.Geometry.Offset+GeometrySize, im.primaryOffset(0)), nil
		}
		return fmt.Sprintf("android-lp-super (empty (lpmake metadata-only: geometry@%d, metadata@%d))", im.Geometry.Offset, im.primaryOffset(0)), nil
	case "lp.geometry.metadata_max_size":
		return fmt.Sprint(im.Geometry.MetadataMaxSize), nil
	case "lp.geometry.metadata_slot_count":
		return fmt.Sprint(im.Geometry.MetadataSlotCount), nil
	case "lp.geometry.logical_block_size":
		return fmt.Sprint(im.Geometry.LogicalBlockSize), nil
	case "lp.geometry.checksum_ok":
		return "True", nil // Open verifies the checksum and fails otherwise
	case "lp.backup_geometry_identical":
		return pyBool(im.BackupGeometryErr == nil && im.BackupGeometryIdentical), nil
	case "lp.backup_metadata_identical":
		all := true
		for _, s := range im.Slots {
			all = all && s.Identical
		}
		return pyBool(all && len(im.Disagreements) == 0), nil
	case "lp.metadata_copies_present":
		n := 0
		for _, s := range im.Slots {
			if s.PrimaryErr == nil {
				n++
			}
		}
		return fmt.Sprint(n), nil
	case "lp.system_a_extent_bytes_equal_file":
		file, _, _ := strings.Cut(fact.Value, ": ")
		pr, err := im.OpenPartition("system_a")
		if err != nil {
			return "", err
		}
		got, err := io.ReadAll(io.NewSectionReader(pr, 0, pr.Size()))
		if err != nil {
			return "", err
		}
		ref, err := os.ReadFile(samplefacts.Path(file))
		if err != nil {
			return "", err
		}
		return file + ": " + pyBool(bytes.Equal(got, ref)), nil
	}
	var slot int
	var rest string
	if _, err := fmt.Sscanf(key, "lp.slot%d.", &slot); err != nil {
		return "", fmt.Errorf("unknown fact key %q", key)
	}
	rest = key[strings.Index(key[3:], ".")+4:]
	md, err := im.ReadSlot(slot)
	if err != nil {
		return "", err
	}
	switch rest {
	case "header_version":
		return md.Header.Version(), nil
	case "header_size":
		return fmt.Sprint(md.Header.HeaderSize), nil
	case "tables_size":
		return fmt.Sprint(md.Header.TablesSize), nil
	case "header_checksum_ok", "tables_checksum_ok":
		return "True", nil // ReadSlot verified both checksums or failed above
	case "partition":
		for _, p := range md.Partitions {
			var ext []string
			for _, e := range p.Extents {
				if e.TargetType == TargetLinear {
					ext = append(ext, fmt.Sprintf("linear:%dsectors@sector%d/dev%d", e.NumSectors, e.TargetData, e.TargetSource))
				} else {
					ext = append(ext, fmt.Sprintf("zero:%dsectors", e.NumSectors))
				}
			}
			s := fmt.Sprintf("%s size=%d attrs=%d group=%s extents=%s", p.Name, p.Size, p.Attributes, p.Group, strings.Join(ext, ","))
			if s == fact.Value {
				return s, nil
			}
		}
		return "", fmt.Errorf("no partition matches %q in %+v", fact.Value, md.Partitions)
	case "group":
		for _, g := range md.Groups {
			if s := fmt.Sprintf("%s max_size=%d flags=%d", g.Name, g.MaximumSize, g.Flags); s == fact.Value {
				return s, nil
			}
		}
		return "", fmt.Errorf("no group matches %q in %+v", fact.Value, md.Groups)
	case "block_device":
		for _, b := range md.BlockDevices {
			s := fmt.Sprintf("%s size=%d first_logical_sector=%d alignment=%d alignment_offset=%d flags=%d", b.Name, b.Size, b.FirstLogicalSector, b.Alignment, b.AlignmentOffset, b.Flags)
			if s == fact.Value {
				return s, nil
			}
		}
		return "", fmt.Errorf("no block device matches %q in %+v", fact.Value, md.BlockDevices)
	}
	return "", fmt.Errorf("unknown fact key %q", key)
}

// Fact is shorthand for samplefacts.Fact.
type Fact = samplefacts.Fact

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
