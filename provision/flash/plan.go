package flash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/firmware/super"
	"github.com/provkit/provkit/provision/fastboot"
)

// StepKind says what a step does.
type StepKind string

// Step kinds.
const (
	StepFlash       StepKind = "flash"
	StepReboot      StepKind = "reboot"
	StepUpdateSuper StepKind = "update-super"
	StepErase       StepKind = "erase"
	StepSetActive   StepKind = "set_active"
	StepResize      StepKind = "resize-logical-partition"
)

// Step is one fastboot command of a plan.
type Step struct {
	Kind StepKind
	// Partition is the target partition with its slot suffix when it has one ("boot_a").
	Partition string
	// Image is what is sent for flash and update-super steps.
	Image *Image
	// Target is the reboot target ("bootloader", "fastboot", "" for the system) or the slot for
	// set_active.
	Target string
	// Logical is true for partitions inside super (flashed from fastbootd).
	Logical bool
	// Size is the new size of a resize step, in bytes.
	Size int64
	// Wipe makes an update-super step replace the device's whole partition table.
	Wipe bool
}

// Command is the step as the fastboot program's command line would say it.
func (s Step) Command() string {
	switch s.Kind {
	case StepFlash:
		return fmt.Sprintf("flash %s %s", s.Partition, s.Image.Path)
	case StepUpdateSuper:
		if s.Wipe {
			return fmt.Sprintf("update-super %s %s wipe", s.Partition, s.Image.Path)
		}
		return fmt.Sprintf("update-super %s %s", s.Partition, s.Image.Path)
	case StepResize:
		return fmt.Sprintf("resize-logical-partition %s %d", s.Partition, s.Size)
	case StepErase:
		return "erase " + s.Partition
	case StepSetActive:
		return "set_active " + s.Target
	case StepReboot:
		if s.Target == "" {
			return "reboot"
		}
		return "reboot " + s.Target
	}
	return string(s.Kind)
}

// Plan is the ordered steps for one device.
type Plan struct {
	Steps []Step
	// Logical names the partitions super_empty.img declares (without slot suffix).
	Logical []string
}

// PlanOptions shape BuildPlan.
type PlanOptions struct {
	// Slot is "", "a", "b", "all" or "other".
	Slot string
	// CurrentSlot is the device's current-slot answer ("a"/"b"); needed for "other" and to name
	// the slot of logical partitions.
	CurrentSlot string
	// SlotCount is the device's slot-count (0 or 1: not an A/B device).
	SlotCount int
	// SetActive makes the flashed slot active at the end.
	SetActive bool
	// Wipe erases userdata and metadata.
	Wipe bool
	// SkipReboot leaves the device in fastboot mode at the end.
	SkipReboot bool
	// SkipSecondary leaves the other slot's logical partitions alone (fastboot --skip-secondary).
	SkipSecondary bool
}

// secondaryImages are the images fastboot's table also lists for the other slot (boot_other.img,
// system_other.img, vendor_other.img): flashall resets those partitions of the other slot too.
var secondaryImages = map[string]bool{"boot": true, "system": true, "vendor": true}

// expandedSize is the size an image has once written: a sparse image's expanded size, or the
// file's. fastboot resizes a logical partition to it before flashing.
func expandedSize(im *Image) (int64, error) {
	r, err := im.Open()
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", im.Path, err)
	}
	defer r.Close()
	var h [28]byte
	if n, _ := r.ReadAt(h[:], 0); n == len(h) && binary.LittleEndian.Uint32(h[:]) == sparse.Magic {
		sp, err := sparse.Open(io.NewSectionReader(r, 0, im.Size), im.Size)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", im.Path, err)
		}
		return sp.Size(), nil
	}
	return im.Size, nil
}

// bootTime lists the images fastboot's update flashes from the bootloader, in its order.
var bootTime = []string{"boot", "init_boot", "vendor_boot", "vendor_kernel_boot", "dtbo", "dt",
	"recovery", "pvmfw", "vbmeta", "vbmeta_system", "vbmeta_vendor", "odm_dlkm_vbmeta"}

// notFlashed are images update does not write as such (userdata and cache are wiped, not flashed, here).
var notFlashed = map[string]bool{"super_empty": true, "userdata": true, "cache": true}

// ErrBadSlot is returned for a --slot value that is not a, b, all or other.
var ErrBadSlot = errors.New("slot must be a, b, all or other")

// maxSuperEmpty bounds super_empty.img before it is read.
const maxSuperEmpty = 4 << 20

// BuildPlan orders the firmware's images the way fastboot update/flashall does.
func BuildPlan(fw *Firmware, o PlanOptions) (*Plan, error) {
	slots, err := targetSlots(o)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	if se, ok := fw.Image("super_empty"); ok {
		names, err := logicalNames(se)
		if err != nil {
			return nil, err
		}
		p.Logical = names
	}
	isLogical := map[string]bool{}
	for _, n := range p.Logical {
		isLogical[stripSlot(n)] = true
	}
	withSlots := func(part string) []string {
		if len(slots) == 0 {
			return []string{part}
		}
		out := make([]string, 0, len(slots))
		for _, s := range slots {
			out = append(out, part+"_"+s)
		}
		return out
	}
	// 1. bootloader and radio, each followed by a reboot into the bootloader.
	for _, part := range []string{"bootloader", "radio"} {
		if im, ok := fw.Image(part); ok {
			for _, t := range withSlots(part) {
				p.Steps = append(p.Steps, Step{Kind: StepFlash, Partition: t, Image: im})
			}
			p.Steps = append(p.Steps, Step{Kind: StepReboot, Target: "bootloader"})
		}
	}
	done := map[string]bool{"bootloader": true, "radio": true, "super_empty": true}
	// 2. boot-time images in fastboot's order, then any other physical image by name.
	var physical []string
	physical = append(physical, bootTime...)
	var rest []string
	for _, im := range fw.Images {
		if !isLogical[im.Partition] && !done[im.Partition] && !contains(bootTime, im.Partition) && !notFlashed[im.Partition] {
			rest = append(rest, im.Partition)
		}
	}
	sort.Strings(rest)
	physical = append(physical, rest...)
	for _, part := range physical {
		im, ok := fw.Image(part)
		if !ok || done[part] {
			continue
		}
		done[part] = true
		targets := withSlots(part)
		if part == "userdata" || part == "cache" {
			targets = []string{part}
		}
		for _, t := range targets {
			p.Steps = append(p.Steps, Step{Kind: StepFlash, Partition: t, Image: im})
		}
	}
	// 3. dynamic partitions through fastbootd, as fastboot's flashall does: the new table, then
	// every logical partition of the images (and of the other slot, which fastboot's
	// system_other/vendor_other entries reach) resized to 0 so that allocation starts afresh,
	// then each image: resized to its size, flashed. The order is fastboot's image table order.
	if se, ok := fw.Image("super_empty"); ok {
		p.Steps = append(p.Steps, Step{Kind: StepReboot, Target: "fastboot"},
			Step{Kind: StepUpdateSuper, Partition: "super", Image: se, Wipe: o.Wipe})
		inSuper := map[string]bool{}
		for _, n := range p.Logical {
			inSuper[n] = true
		}
		var images []*Image
		for i := range fw.Images {
			if isLogical[fw.Images[i].Partition] {
				images = append(images, &fw.Images[i])
			}
		}
		sort.Slice(images, func(i, j int) bool { return images[i].Partition < images[j].Partition })
		var other string
		if len(slots) == 1 && !o.SkipSecondary {
			other = map[string]string{"a": "b", "b": "a"}[slots[0]]
		}
		for _, im := range images {
			names := withSlots(im.Partition)
			if other != "" && secondaryImages[im.Partition] {
				names = append(names, im.Partition+"_"+other)
			}
			for _, n := range names {
				if inSuper[n] {
					p.Steps = append(p.Steps, Step{Kind: StepResize, Partition: n, Logical: true})
				}
			}
		}
		for _, im := range images {
			size, err := expandedSize(im)
			if err != nil {
				return nil, err
			}
			for _, n := range withSlots(im.Partition) {
				if !inSuper[n] {
					continue
				}
				p.Steps = append(p.Steps, Step{Kind: StepResize, Partition: n, Size: size, Logical: true},
					Step{Kind: StepFlash, Partition: n, Image: im, Logical: true})
			}
		}
	}
	// 4. wipe, set_active, reboot.
	if o.Wipe {
		p.Steps = append(p.Steps, Step{Kind: StepErase, Partition: "userdata"}, Step{Kind: StepErase, Partition: "metadata"})
	}
	if o.SetActive && len(slots) == 1 {
		p.Steps = append(p.Steps, Step{Kind: StepSetActive, Target: slots[0]})
	}
	if !o.SkipReboot {
		p.Steps = append(p.Steps, Step{Kind: StepReboot})
	}
	return p, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func stripSlot(s string) string {
	if strings.HasSuffix(s, "_a") || strings.HasSuffix(s, "_b") {
		return s[:len(s)-2]
	}
	return s
}

// targetSlots resolves --slot against the device; nil means "no suffix" (not A/B, or current slot).
func targetSlots(o PlanOptions) ([]string, error) {
	ab := o.SlotCount >= 2
	switch o.Slot {
	case "":
		if ab && o.CurrentSlot != "" {
			return []string{o.CurrentSlot}, nil
		}
		return nil, nil
	case "a", "b":
		if !ab {
			return nil, fmt.Errorf("slot %s: the device has no A/B slots", o.Slot)
		}
		return []string{o.Slot}, nil
	case "all":
		if !ab {
			return nil, nil
		}
		return []string{"a", "b"}, nil
	case "other":
		if !ab {
			return nil, fmt.Errorf("slot other: the device has no A/B slots")
		}
		switch o.CurrentSlot {
		case "a":
			return []string{"b"}, nil
		case "b":
			return []string{"a"}, nil
		}
		return nil, fmt.Errorf("slot other: device current-slot %q is neither a nor b", o.CurrentSlot)
	}
	return nil, fmt.Errorf("slot %q: %w", o.Slot, ErrBadSlot)
}

// logicalNames reads the partition names super_empty.img declares.
func logicalNames(se *Image) ([]string, error) {
	if se.Size > maxSuperEmpty {
		return nil, fmt.Errorf("reading %s: %d bytes, more than a super_empty.img holds (%d)", se.Path, se.Size, maxSuperEmpty)
	}
	r, err := se.Open()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", se.Path, err)
	}
	defer r.Close()
	im, err := super.Open(io.NewSectionReader(r, 0, se.Size), se.Size, nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", se.Path, err)
	}
	var names []string
	for _, p := range im.Metadata.Partitions {
		names = append(names, p.Name)
	}
	return names, nil
}

// PlanDevice checks android-info.txt's requirements against the device behind c, reads its slots
// (slot-count, current-slot) into o, and builds the plan for it. c stays open.
func PlanDevice(ctx context.Context, c *fastboot.Client, fw *Firmware, o PlanOptions) (*Plan, error) {
	if err := CheckRequirements(fw.Info, func(name string) (string, error) { return c.GetVar(ctx, name) }); err != nil {
		return nil, err
	}
	if v, err := c.GetVar(ctx, "slot-count"); err == nil {
		o.SlotCount, _ = strconv.Atoi(v)
	}
	if v, err := c.GetVar(ctx, "current-slot"); err == nil {
		o.CurrentSlot = v
	}
	return BuildPlan(fw, o)
}
