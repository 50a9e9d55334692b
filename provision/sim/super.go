package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/provkit/provkit/firmware/super"
)

// The simulator keeps a device's logical partitions the way a phone does: inside a physical "super"
// partition, described by LP metadata (firmware/super reads and changes it). update-super,
// create-, delete- and resize-logical-partition change that metadata; a flashed logical partition's
// bytes land in super at the sectors its extents map. Dumping super and reading it with provkit
// (or comparing it byte for byte with another simulated phone's) shows what a tool did.

const (
	superName = "super"
	// simMetadataMax is metadata_max_size of a simulated super (what AOSP builds use).
	simMetadataMax = 65536
	// simSuperAlign is the super device's partition alignment (1 MiB, as AOSP builds).
	simSuperAlign = 1 << 20
	// maxSuperEmpty bounds the download update-super parses.
	maxSuperEmpty = 4 << 20
)

// logicalView reads and writes one logical partition through its extents in the super file.
type logicalView struct {
	f    *os.File
	exts []super.Extent
	size int64
	name string
}

func (v *logicalView) locate(off int64) (phys, room int64, ok bool) {
	var logical int64
	for _, e := range v.exts {
		n := int64(e.NumSectors) * super.SectorSize
		if off < logical+n {
			if e.TargetType != super.TargetLinear {
				return -1, logical + n - off, true
			}
			return int64(e.TargetData)*super.SectorSize + off - logical, logical + n - off, true
		}
		logical += n
	}
	return 0, 0, false
}

func (v *logicalView) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		phys, room, ok := v.locate(off + int64(done))
		if !ok {
			return done, io.EOF
		}
		k := int(min(room, int64(len(p)-done)))
		if phys < 0 {
			clear(p[done : done+k])
		} else if _, err := v.f.ReadAt(p[done:done+k], phys); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

func (v *logicalView) WriteAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		phys, room, ok := v.locate(off + int64(done))
		if !ok {
			return done, fmt.Errorf("write at byte %d past the end of logical partition %s (%d bytes)", off+int64(done), v.name, v.size)
		}
		k := int(min(room, int64(len(p)-done)))
		if phys >= 0 {
			if _, err := v.f.WriteAt(p[done:done+k], phys); err != nil {
				return done, err
			}
		}
		done += k
	}
	return done, nil
}

// initSuper builds the super partition of a device whose scenario declares logical partitions: each
// becomes an LP partition (one per slot on A/B devices) with the configured size and contents.
func (d *Device) initSuper(dir string) error {
	fb := &d.fb
	var logical []PartitionConfig
	var need int64
	for _, pc := range d.cfg.Partitions {
		if pc.Logical {
			logical = append(logical, pc)
			n := (pc.Size + simSuperAlign - 1) / simSuperAlign * simSuperAlign
			if d.cfg.Slotted {
				n *= 2
			}
			need += n
		}
	}
	if len(logical) == 0 {
		return nil
	}
	slots := uint32(2)
	if d.cfg.Slotted {
		slots = 3
	}
	geo := super.Geometry{MetadataMaxSize: simMetadataMax, MetadataSlotCount: slots, LogicalBlockSize: 4096}
	first := (super.MetadataEnd(geo) + simSuperAlign - 1) / simSuperAlign * simSuperAlign
	sp := fb.parts[superName]
	if sp == nil {
		size := first + need + simSuperAlign
		f, err := os.CreateTemp(dir, superName+"-")
		if err != nil {
			return fmt.Errorf("creating super of %s: %w", d.cfg.Serial, err)
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			return fmt.Errorf("creating super of %s: %w", d.cfg.Serial, err)
		}
		sp = &partition{cfg: PartitionConfig{Name: superName, Size: size}, file: f}
		fb.parts[superName] = sp
	}
	md := &super.Metadata{
		Header:       super.Header{Major: 10, Minor: 0},
		Groups:       []super.Group{{Name: "default"}},
		BlockDevices: []super.BlockDevice{{Name: superName, FirstLogicalSector: uint64(first / super.SectorSize), Alignment: simSuperAlign, Size: uint64(sp.cfg.Size)}},
	}
	fb.logicalTypes = map[string]string{}
	for _, pc := range logical {
		fb.logicalTypes[pc.Name] = pc.Type
		names := []string{pc.Name}
		if d.cfg.Slotted {
			names = []string{pc.Name + "_a", pc.Name + "_b"}
		}
		for _, n := range names {
			if err := md.AddPartition(n, "default", super.AttrReadonly); err != nil {
				return fmt.Errorf("creating logical partition %s of %s: %w", n, d.cfg.Serial, err)
			}
			if err := md.Resize(geo, n, pc.Size); err != nil {
				return fmt.Errorf("creating logical partition %s of %s: super of %d bytes: %w", n, d.cfg.Serial, sp.cfg.Size, err)
			}
		}
	}
	if err := super.Format(sp.file, geo, md); err != nil {
		return fmt.Errorf("formatting super of %s: %w", d.cfg.Serial, err)
	}
	fb.lpGeo, fb.lp = geo, md
	for _, pc := range logical {
		if pc.Contents == "" {
			continue
		}
		names := []string{pc.Name}
		if d.cfg.Slotted {
			names = []string{pc.Name + "_a", pc.Name + "_b"}
		}
		for _, n := range names {
			v := fb.logicalLocked(n)
			src, err := os.Open(pc.Contents)
			if err != nil {
				return fmt.Errorf("filling partition %s of %s: %w", n, d.cfg.Serial, err)
			}
			_, err = io.Copy(io.NewOffsetWriter(v, 0), io.LimitReader(src, v.size))
			src.Close()
			if err != nil {
				return fmt.Errorf("filling partition %s of %s: %w", n, d.cfg.Serial, err)
			}
		}
	}
	return nil
}

// logicalLocked returns a view of logical partition name, or nil (fb.mu held, or during init).
func (s *fastbootState) logicalLocked(name string) *logicalView {
	if s.lp == nil || s.parts[superName] == nil {
		return nil
	}
	i := s.lp.Find(name)
	if i < 0 {
		return nil
	}
	p := s.lp.Partitions[i]
	return &logicalView{f: s.parts[superName].file, exts: p.Extents, size: p.Size, name: name}
}

// logicalNames lists the logical partitions, sorted.
func (s *fastbootState) logicalNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lp == nil {
		return nil
	}
	var out []string
	for _, p := range s.lp.Partitions {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// reloadSuper re-reads the LP metadata after super itself was written or erased (fb.mu held).
func (s *fastbootState) reloadSuperLocked() {
	sp := s.parts[superName]
	if sp == nil {
		return
	}
	im, err := super.Open(sp.file, sp.cfg.Size, nil)
	if err != nil || im.Layout != super.LayoutFull {
		s.lp = nil
		return
	}
	s.lpGeo, s.lp = im.Geometry, im.Metadata.Clone()
}

// changeMetadata applies fn to a copy of the metadata and writes the result into every slot, as
// fastbootd's UpdateAllPartitionMetadata does; on error nothing changes.
func (d *Device) changeMetadata(fn func(md *super.Metadata) error) error {
	fb := &d.fb
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.lp == nil {
		return errors.New("Could not open super partition")
	}
	md := fb.lp.Clone()
	if err := fn(md); err != nil {
		return err
	}
	if err := super.Format(fb.parts[superName].file, fb.lpGeo, md); err != nil {
		return fmt.Errorf("Unable to write new partition table: %v", err)
	}
	fb.lp = md
	return nil
}

// fbUpdateSuper serves update-super:<name>[:wipe] with the downloaded super_empty.img: with wipe, or
// when the device's metadata does not read, the new table replaces it; otherwise the partitions of
// the other slot are kept, as fastbootd does.
func (d *Device) fbUpdateSuper(arg string, data []byte) error {
	if d.Mode() != ModeFastbootd {
		return errors.New("unknown command")
	}
	if !d.cfg.Unlocked {
		return errors.New("Command not available on locked devices")
	}
	name, opt, _ := strings.Cut(arg, ":")
	wipe := opt == "wipe"
	if data == nil {
		return errors.New("No data available")
	}
	if len(data) > maxSuperEmpty {
		return errors.New("Data is not a valid logical partition metadata image")
	}
	geo, md, err := super.Parse(data)
	if err != nil {
		d.logf("fastboot: update-super: %v", err)
		return errors.New("Data is not a valid logical partition metadata image")
	}
	fb := &d.fb
	fb.mu.Lock()
	defer fb.mu.Unlock()
	sp := fb.parts[name]
	if sp == nil || name != superName {
		return fmt.Errorf("Cannot find %s, build may be missing broken or missing boot_devices", name)
	}
	if len(md.BlockDevices) == 0 || md.BlockDevices[0].Size > uint64(sp.cfg.Size) || super.MetadataEnd(geo) > sp.cfg.Size {
		d.logf("fastboot: update-super: the metadata describes a %d-byte super; the device's is %d bytes", firstDevSize(md), sp.cfg.Size)
		return errors.New("Unable to flash new partition table")
	}
	md = md.Clone()
	if wipe || fb.lp == nil {
		if err := super.Format(sp.file, geo, md); err != nil {
			return errors.New("Unable to flash new partition table")
		}
		fb.lpGeo, fb.lp = geo, md
		return nil
	}
	if !geo.Same(fb.lpGeo) {
		d.logf("fastboot: update-super: geometry %+v differs from the device's %+v", geo, fb.lpGeo)
		return errors.New("Unable to write new partition table")
	}
	keep := map[string]bool{}
	suffix := ""
	if d.cfg.Slotted {
		suffix = "_" + fb.currentSlot
	}
	for _, p := range fb.lp.Partitions {
		if suffix != "" && strings.HasSuffix(p.Name, suffix) {
			continue
		}
		if p.Name == "scratch" {
			continue
		}
		keep[p.Name] = true
	}
	if len(keep) > 0 {
		if err := md.ImportPartitions(fb.lp, keep); err != nil {
			d.logf("fastboot: update-super: %v", err)
			return errors.New("Unable to import partitions during update-super")
		}
	}
	if err := super.Format(sp.file, geo, md); err != nil {
		return errors.New("Unable to write new partition table")
	}
	fb.lp = md
	return nil
}

func firstDevSize(md *super.Metadata) uint64 {
	if len(md.BlockDevices) == 0 {
		return 0
	}
	return md.BlockDevices[0].Size
}

// fbLogicalOp serves create-, delete- and resize-logical-partition.
func (d *Device) fbLogicalOp(op, arg string) error {
	if d.Mode() != ModeFastbootd {
		return errors.New("unknown command")
	}
	if !d.cfg.Unlocked {
		return errors.New("Command not available on locked devices")
	}
	name, sizeArg, hasSize := strings.Cut(arg, ":")
	var size int64
	if op != "delete" {
		n, err := strconv.ParseUint(sizeArg, 10, 62)
		if !hasSize || err != nil {
			return errors.New("Invalid partition size")
		}
		size = int64(n)
	}
	if op != "create" {
		name = d.fbPartitionName(name)
	}
	return d.changeMetadata(func(md *super.Metadata) error {
		switch op {
		case "create":
			if md.Find(name) >= 0 {
				return errors.New("Partition already exists")
			}
			if err := md.AddPartition(name, "default", 0); err != nil {
				return errors.New("Failed to add partition")
			}
		case "delete":
			if err := md.RemovePartition(name); err != nil {
				return errors.New("Could not find partition")
			}
			return nil
		default:
			if md.Find(name) < 0 {
				return errors.New("Could not find partition")
			}
		}
		if err := md.Resize(d.fb.lpGeo, name, size); err != nil {
			d.logf("fastboot: %s-logical-partition %s: %v", op, name, err)
			return errors.New("Not enough space to resize partition")
		}
		return nil
	})
}

// DumpPartitions writes every partition of the device, as fastboot names them, into dir as
// <name>.img: the physical ones (super included) and each logical partition read through super's
// metadata. It returns the names written.
func (d *Device) DumpPartitions(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dumping the partitions of %s: %w", d.cfg.Serial, err)
	}
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	type src struct {
		name string
		r    io.ReaderAt
		size int64
	}
	var srcs []src
	for n, p := range d.fb.parts {
		srcs = append(srcs, src{n, p.file, p.cfg.Size})
	}
	if d.fb.lp != nil {
		for _, p := range d.fb.lp.Partitions {
			v := d.fb.logicalLocked(p.Name)
			srcs = append(srcs, src{p.Name, v, v.size})
		}
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].name < srcs[j].name })
	var names []string
	for _, s := range srcs {
		path := filepath.Join(dir, s.name+".img")
		f, err := os.Create(path)
		if err != nil {
			return names, fmt.Errorf("dumping partition %s of %s: %w", s.name, d.cfg.Serial, err)
		}
		_, err = io.Copy(f, io.NewSectionReader(s.r, 0, s.size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return names, fmt.Errorf("dumping partition %s of %s to %s: %w", s.name, d.cfg.Serial, path, err)
		}
		names = append(names, s.name)
	}
	return names, nil
}

// SuperMetadata returns the device's current LP metadata (a copy), or nil when it has no super.
func (d *Device) SuperMetadata() *super.Metadata {
	d.fb.mu.Lock()
	defer d.fb.mu.Unlock()
	if d.fb.lp == nil {
		return nil
	}
	return d.fb.lp.Clone()
}
