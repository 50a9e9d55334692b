package flash

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testimage/lpwrite"
)

func writeDir(t *testing.T, withSuper bool) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"android-info.txt":          "require board=oriole\nrequire version-bootloader=slider-1.2*|slider-1.3\n",
		"bootloader-oriole-1.2.img": "BL",
		"radio-oriole-g5123.img":    "RADIO",
		"boot.img":                  "BOOT",
		"vbmeta.img":                "VBMETA",
		"dtbo.img":                  "DTBO",
		"vendor_boot.img":           "VB",
		"system.img":                "SYSTEM",
		"vendor.img":                "VENDOR",
		"userdata.img":              "UD",
		"notes.txt":                 "not an image",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if withSuper {
		b, err := lpwrite.Write(lpwrite.Spec{DeviceSize: 4 << 20, MetadataMaxSize: 65536, Slots: 2, Alignment: 1 << 20,
			Partitions: []lpwrite.Partition{{Name: "system_a", Attributes: 1}, {Name: "vendor_a", Attributes: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "super_empty.img"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func commands(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		c := s.Command()
		if s.Image != nil {
			c = strings.Replace(c, s.Image.Path, s.Image.Name, 1)
		}
		out = append(out, c)
	}
	return out
}

func TestPlanOrderLikeFastbootUpdate(t *testing.T) {
	fw, err := OpenFirmware(writeDir(t, true), FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	p, err := BuildPlan(fw, PlanOptions{SlotCount: 2, CurrentSlot: "a", SetActive: true, Wipe: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"flash bootloader_a bootloader-oriole-1.2.img", "reboot bootloader",
		"flash radio_a radio-oriole-g5123.img", "reboot bootloader",
		"flash boot_a boot.img", "flash vendor_boot_a vendor_boot.img", "flash dtbo_a dtbo.img", "flash vbmeta_a vbmeta.img",
		"reboot fastboot", "update-super super super_empty.img wipe",
		"resize-logical-partition system_a 0", "resize-logical-partition vendor_a 0",
		"resize-logical-partition system_a 6", "flash system_a system.img",
		"resize-logical-partition vendor_a 6", "flash vendor_a vendor.img",
		"erase userdata", "erase metadata", "set_active a", "reboot",
	}
	if got := commands(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(p.Logical, ",") != "system_a,vendor_a" {
		t.Errorf("logical = %v", p.Logical)
	}
}

func TestPlanSlots(t *testing.T) {
	fw, err := OpenFirmware(writeDir(t, false), FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPlan(fw, PlanOptions{Slot: "all", SlotCount: 2, CurrentSlot: "b", SkipReboot: true, SetActive: true})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(commands(p), "\n")
	for _, w := range []string{"flash boot_a boot.img\nflash boot_b boot.img", "flash system_a system.img\nflash system_b system.img"} {
		if !strings.Contains(got, w) {
			t.Errorf("plan lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "reboot\n") || strings.HasSuffix(got, "reboot") || strings.Contains(got, "set_active") {
		t.Errorf("skip-reboot / set_active with two slots not honoured:\n%s", got)
	}
	p, err = BuildPlan(fw, PlanOptions{Slot: "other", SlotCount: 2, CurrentSlot: "b"})
	if err != nil || !strings.Contains(strings.Join(commands(p), "\n"), "flash boot_a boot.img") {
		t.Errorf("slot other from b: %v %v", err, commands(p))
	}
	for _, o := range []PlanOptions{{Slot: "c", SlotCount: 2}, {Slot: "a"}, {Slot: "other", SlotCount: 2}} {
		if _, err := BuildPlan(fw, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	p, err = BuildPlan(fw, PlanOptions{})
	if err != nil || !strings.Contains(strings.Join(commands(p), "\n"), "flash boot boot.img") {
		t.Errorf("non-A/B device: %v %v", err, commands(p))
	}
}

func TestRequirements(t *testing.T) {
	fw, err := OpenFirmware(writeDir(t, false), FirmwareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"product": "ORIOLE", "version-bootloader": "slider-1.2-9876"}
	get := func(n string) (string, error) { return vars[n], nil }
	if err := CheckRequirements(fw.Info, get); err != nil {
		t.Errorf("matching device refused: %v", err)
	}
	vars["product"] = "raven"
	err = CheckRequirements(fw.Info, get)
	if !errors.Is(err, ErrRequirement) || !strings.Contains(err.Error(), `"raven"`) {
		t.Errorf("wrong board: %v", err)
	}
	vars["product"] = "oriole"
	vars["version-bootloader"] = "slider-1.4"
	if err := CheckRequirements(fw.Info, get); !errors.Is(err, ErrRequirement) {
		t.Errorf("wrong bootloader: %v", err)
	}
}

func TestOpenFirmwareSources(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFirmware(dir, FirmwareOptions{}); !errors.Is(err, ErrNoAndroidInfo) {
		t.Errorf("dir without android-info.txt: %v", err)
	}
	img := filepath.Join(dir, "x.img")
	os.WriteFile(img, []byte("hello"), 0o644)
	fw, err := OpenFirmware(img, FirmwareOptions{Partition: "boot"})
	if err != nil || len(fw.Images) != 1 || fw.Images[0].Partition != "boot" || fw.Images[0].Size != 5 {
		t.Fatalf("single image: %v %+v", err, fw)
	}
	r, err := fw.Images[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	if _, err := r.ReadAt(b, 0); err != nil || string(b) != "hello" {
		t.Errorf("read %q %v", b, err)
	}
	r.Close()
	if _, err := OpenFirmware(img, FirmwareOptions{Partition: "../boot"}); err == nil {
		t.Error("bad partition name accepted")
	}
	if _, err := OpenFirmware(img, FirmwareOptions{}); err == nil {
		t.Error("a non-zip file accepted as a factory zip")
	}
}
