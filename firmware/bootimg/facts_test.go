package bootimg

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// bootFiles are the samples whose boot-image facts this package owns.
func bootFiles(t *testing.T) map[string]bool {
	files, err := samplefacts.FilesWith(func(f samplefacts.Fact) bool {
		return strings.HasPrefix(f.Key, "bootimg.") || strings.Contains(f.Value, "boot-image") || strings.Contains(f.Value, "DT table")
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// ownedElsewhere reports facts about these samples that firmware/avb asserts.
func ownedElsewhere(f samplefacts.Fact) bool {
	return strings.HasPrefix(f.Key, "avb.") || f.Key == "format.avb"
}

func TestSampleFacts(t *testing.T) {
	files := bootFiles(t)
	facts, err := samplefacts.Load(func(f string) bool { return files[f] })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fact := range facts {
		if ownedElsewhere(fact) {
			continue
		}
		n++
		t.Run(fmt.Sprintf("%d/%s/%s", fact.Line, fact.File, fact.Key), func(t *testing.T) {
			if ok, err := samplefacts.Provenance(fact); ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			f, err := os.Open(samplefacts.Path(fact.File))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			if strings.Contains(fact.Value, "DT table") {
				dt, err := OpenDTTable(f, st.Size())
				if err != nil {
					t.Fatal(err)
				}
				if fact.Key != "format" || fact.Value != dt.Format() || len(dt.Entries) == 0 {
					t.Fatalf("%s=%s: DT table %+v", fact.Key, fact.Value, dt)
				}
				return
			}
			im, err := Open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			got, err := bootFact(im, fact.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got != fact.Value {
				t.Fatalf("%s: got %q, want %q", fact.Key, got, fact.Value)
			}
		})
	}
	if n < 100 {
		t.Fatalf("only %d boot image facts", n)
	}
}

func bootFact(im *Image, key string) (string, error) {
	u := func(v uint32) (string, error) { return fmt.Sprint(v), nil }
	switch key {
	case "format", "format.container":
		if im.Kind == KindVendorBoot {
			return "android-vendor-boot-image", nil
		}
		return "android-boot-image", nil
	case "bootimg.header_version":
		return u(im.HeaderVersion)
	case "bootimg.page_size":
		return u(im.PageSize)
	case "bootimg.kernel_size":
		return u(im.KernelSize)
	case "bootimg.ramdisk_size":
		return u(im.RamdiskSize)
	case "bootimg.second_size":
		return u(im.SecondSize)
	case "bootimg.cmdline":
		return im.Cmdline, nil
	case "bootimg.vendor_cmdline":
		if im.Kind != KindVendorBoot {
			return "", fmt.Errorf("vendor_cmdline on a boot image")
		}
		return im.Cmdline, nil
	case "bootimg.recovery_dtbo_size":
		return u(im.RecoveryDTBOSize)
	case "bootimg.recovery_dtbo_offset":
		return fmt.Sprint(im.RecoveryDTBOOffset), nil
	case "bootimg.header_size":
		return u(im.HeaderSize)
	case "bootimg.dtb_size":
		return u(im.DTBSize)
	case "bootimg.dtb_addr":
		return fmt.Sprint(im.DTBAddr), nil
	case "bootimg.os_version":
		if im.OSVersion == nil {
			return "", nil
		}
		return im.OSVersion.String(), nil
	case "bootimg.signature_size":
		return u(im.SignatureSize)
	case "bootimg.vendor_ramdisk_size":
		return u(im.VendorRamdiskSize)
	case "bootimg.ramdisk_table_size":
		return u(im.RamdiskTableSize)
	case "bootimg.ramdisk_table_entry_num":
		return fmt.Sprint(len(im.VendorRamdisks)), nil
	case "bootimg.ramdisk_table_entry_size":
		return u(im.RamdiskTableEntrySize)
	case "bootimg.bootconfig_size":
		return fmt.Sprint(len(im.Bootconfig)), nil
	}
	return "", fmt.Errorf("unknown fact key %q", key)
}
