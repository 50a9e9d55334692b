package line

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/provkit/provkit/provision/fastboot"
)

// FastbootTarget is a phone in fastboot mode, ready to flash.
type FastbootTarget struct {
	Serial string // as the phone reports it (getvar serialno)
	Addr   string // fastboot TCP address
}

// Flasher writes a station's firmware to a phone in fastboot mode. The station reboots the phone
// into the bootloader before and back into Android after. progress is called with the bytes sent
// so far and the total (from the flashing goroutine).
//
// DirFlasher is the implementation for now; the planner of `provkit flash` (its own issue) will
// implement this interface and replace it, with factory zips, super images and slots.
type Flasher interface {
	// FirmwareSHA256 identifies the firmware: the same digest means the same images.
	FirmwareSHA256() string
	Flash(ctx context.Context, t FastbootTarget, progress func(done, total int64)) (FlashEvidence, error)
}

// FlashEvidence is what a flash proved: what was written where.
type FlashEvidence struct {
	FirmwareSHA256 string           `json:"firmwareSha256"`
	Partitions     []PartitionImage `json:"partitions"`
	DurationMS     int64            `json:"durationMs"`
}

// PartitionImage is one image written to one partition.
type PartitionImage struct {
	Partition string `json:"partition"`
	File      string `json:"file"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
}

// maxImages bounds how many images a firmware directory may hold.
const maxImages = 64

// DirFlasher flashes a directory of <partition>.img files (raw or Android sparse) over fastboot
// TCP, in name order.
type DirFlasher struct {
	dir    string
	images []PartitionImage
	digest string
}

// NewDirFlasher reads the images of dir and digests them.
func NewDirFlasher(dir string) (*DirFlasher, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading firmware directory: %w", err)
	}
	f := &DirFlasher{dir: dir}
	manifest := sha256.New()
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".img") || !e.Type().IsRegular() {
			continue
		}
		part := strings.TrimSuffix(name, ".img")
		if part == "" || strings.ContainsAny(part, ": \t\r\n") {
			return nil, fmt.Errorf("firmware %s: %q does not name a partition", dir, name)
		}
		if len(f.images) == maxImages {
			return nil, fmt.Errorf("firmware %s: more than %d images", dir, maxImages)
		}
		im, err := digestFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		im.Partition, im.File = part, name
		f.images = append(f.images, im)
	}
	if len(f.images) == 0 {
		return nil, fmt.Errorf("firmware %s: no <partition>.img file", dir)
	}
	sort.Slice(f.images, func(i, j int) bool { return f.images[i].Partition < f.images[j].Partition })
	for _, im := range f.images {
		fmt.Fprintf(manifest, "%s %s %d\n", im.Partition, im.SHA256, im.Size)
	}
	f.digest = hex.EncodeToString(manifest.Sum(nil))
	return f, nil
}

func digestFile(path string) (PartitionImage, error) {
	fh, err := os.Open(path)
	if err != nil {
		return PartitionImage{}, fmt.Errorf("reading firmware image: %w", err)
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return PartitionImage{}, fmt.Errorf("reading firmware image %s: %w", path, err)
	}
	return PartitionImage{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// FirmwareSHA256 is the SHA-256 of the image manifest (one "partition sha256 size" line each).
func (f *DirFlasher) FirmwareSHA256() string { return f.digest }

// Images lists what Flash writes.
func (f *DirFlasher) Images() []PartitionImage { return append([]PartitionImage(nil), f.images...) }

// Flash writes every image, checking first that the phone at t.Addr is the one expected.
func (f *DirFlasher) Flash(ctx context.Context, t FastbootTarget, progress func(done, total int64)) (FlashEvidence, error) {
	start := time.Now()
	ev := FlashEvidence{FirmwareSHA256: f.digest, Partitions: []PartitionImage{}}
	if t.Addr == "" {
		return ev, errors.New("flashing: no fastboot TCP address for this phone (phones on USB need `provkit flash`)")
	}
	c, err := fastboot.Dial(ctx, t.Addr)
	if err != nil {
		return ev, fmt.Errorf("flashing %s: %w", t.Serial, err)
	}
	defer c.Close()
	if sn, err := c.GetVar(ctx, "serialno"); err != nil {
		return ev, fmt.Errorf("flashing %s: %w", t.Serial, err)
	} else if sn != t.Serial {
		return ev, fmt.Errorf("flashing %s: the phone at %s says it is %q; not flashing another phone", t.Serial, t.Addr, sn)
	}
	var total, done int64
	for _, im := range f.images {
		total += im.Size
	}
	for _, im := range f.images {
		if err := ctx.Err(); err != nil {
			return ev, err
		}
		fh, err := os.Open(filepath.Join(f.dir, im.File))
		if err != nil {
			return ev, fmt.Errorf("flashing %s: %w", t.Serial, err)
		}
		fi, err := fh.Stat()
		if err == nil && fi.Size() != im.Size {
			err = fmt.Errorf("%s changed since the station started (size %d, was %d)", im.File, fi.Size(), im.Size)
		}
		if err == nil {
			base := done
			r := &countingReaderAt{r: fh, f: func(n int64) {
				if progress != nil {
					progress(base+n, total)
				}
			}}
			err = c.Flash(ctx, im.Partition, r, im.Size, fastboot.FlashOptions{})
		}
		fh.Close()
		if err != nil {
			return ev, fmt.Errorf("flashing %s partition %s: %w", t.Serial, im.Partition, err)
		}
		done += im.Size
		if progress != nil {
			progress(done, total)
		}
		ev.Partitions = append(ev.Partitions, im)
	}
	ev.DurationMS = time.Since(start).Milliseconds()
	return ev, nil
}

// countingReaderAt reports the furthest offset read, as a rough progress of a download.
type countingReaderAt struct {
	r   io.ReaderAt
	max int64
	f   func(int64)
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if end := off + int64(n); end > c.max {
		c.max = end
		c.f(end)
	}
	return n, err
}
