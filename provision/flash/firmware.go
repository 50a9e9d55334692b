package flash

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/provkit/provkit/firmware/factoryzip"
)

// ErrNoAndroidInfo is returned for a directory without android-info.txt.
var ErrNoAndroidInfo = errors.New("no android-info.txt")

// maxInfoSize bounds android-info.txt before it is read.
const maxInfoSize = 64 << 10

// Image is one partition image of a firmware package.
type Image struct {
	// Name is the file name (system.img, bootloader-oriole-1.2.img).
	Name string
	// Partition is the partition it is written to, without slot suffix ("bootloader", "system").
	Partition string
	// Path says where it is, for messages: a file path or "outer.zip!image-x.zip!system.img".
	Path string
	Size int64

	open   func() (ReaderAtCloser, error)
	digest *imageDigest // shared by every device a run flashes
}

type imageDigest struct {
	once sync.Once
	sum  string
	err  error
}

// SHA256 returns the hex SHA-256 of the image's bytes, computed once however many devices ask.
func (im *Image) SHA256() (string, error) {
	d := im.digest
	if d == nil {
		d = &imageDigest{}
	}
	d.once.Do(func() {
		r, err := im.Open()
		if err != nil {
			d.err = fmt.Errorf("opening %s: %w", im.Path, err)
			return
		}
		defer r.Close()
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, im.Size)); err != nil {
			d.err = fmt.Errorf("reading %s: %w", im.Path, err)
			return
		}
		d.sum = hex.EncodeToString(h.Sum(nil))
	})
	return d.sum, d.err
}

// ReaderAtCloser is an opened image: random reads of Size bytes, then Close.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Open opens the image's bytes for reading in place.
func (im *Image) Open() (ReaderAtCloser, error) { return im.open() }

// Firmware is an opened firmware package.
type Firmware struct {
	// Source is the path given to OpenFirmware.
	Source string
	// Info is android-info.txt (nil for a single image).
	Info *factoryzip.AndroidInfo
	// Images are all partition images, sorted by partition name.
	Images []Image

	closer io.Closer
}

// Image returns the image for partition, if the firmware has one.
func (fw *Firmware) Image(partition string) (*Image, bool) {
	for i := range fw.Images {
		if fw.Images[i].Partition == partition {
			return &fw.Images[i], true
		}
	}
	return nil, false
}

// Close releases the package (and removes a spilled temporary file).
func (fw *Firmware) Close() error {
	if fw.closer != nil {
		return fw.closer.Close()
	}
	return nil
}

// FirmwareOptions change OpenFirmware.
type FirmwareOptions struct {
	// Partition makes a single image file the firmware, for this partition.
	Partition string
	// TempDir is where a deflated nested image zip is spilled (default os.TempDir()).
	TempDir string
}

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }

// OpenFirmware opens a factory zip, a directory with android-info.txt, or (with opts.Partition) one
// image file.
func OpenFirmware(path string, opts FirmwareOptions) (*Firmware, error) {
	fw, err := openFirmware(path, opts)
	if err != nil {
		return nil, err
	}
	for i := range fw.Images {
		fw.Images[i].digest = &imageDigest{}
	}
	return fw, nil
}

func openFirmware(path string, opts FirmwareOptions) (*Firmware, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("opening firmware: %w", err)
	}
	if opts.Partition != "" {
		if st.IsDir() {
			return nil, fmt.Errorf("opening firmware %s: --partition needs an image file, not a directory", path)
		}
		if err := checkPartitionName(opts.Partition); err != nil {
			return nil, fmt.Errorf("opening firmware %s: %w", path, err)
		}
		return &Firmware{Source: path, Images: []Image{fileImage(path, opts.Partition, st.Size())}}, nil
	}
	if st.IsDir() {
		return openDir(path)
	}
	return openZip(path, st.Size(), opts)
}

func fileImage(path, partition string, size int64) Image {
	return Image{Name: filepath.Base(path), Partition: partition, Path: path, Size: size,
		open: func() (ReaderAtCloser, error) { return os.Open(path) }}
}

func openDir(dir string) (*Firmware, error) {
	infoPath := filepath.Join(dir, "android-info.txt")
	f, err := os.Open(infoPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening firmware directory %s: %w", dir, ErrNoAndroidInfo)
		}
		return nil, fmt.Errorf("opening firmware directory %s: %w", dir, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInfoSize+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", infoPath, err)
	}
	if len(b) > maxInfoSize {
		return nil, fmt.Errorf("reading %s: larger than %d bytes", infoPath, maxInfoSize)
	}
	info, err := factoryzip.ParseAndroidInfo(b)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", infoPath, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing firmware directory %s: %w", dir, err)
	}
	fw := &Firmware{Source: dir, Info: info}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".img") {
			continue
		}
		part := partitionOf(name)
		if checkPartitionName(part) != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("reading firmware directory %s: %w", dir, err)
		}
		fw.Images = append(fw.Images, fileImage(filepath.Join(dir, name), part, fi.Size()))
	}
	sortImages(fw.Images)
	return fw, nil
}

// partitionOf maps a file name to its partition as factoryzip does.
func partitionOf(name string) string {
	switch {
	case strings.HasPrefix(name, "bootloader-"):
		return "bootloader"
	case strings.HasPrefix(name, "radio-"):
		return "radio"
	}
	return strings.TrimSuffix(name, ".img")
}

func sortImages(ims []Image) {
	sort.Slice(ims, func(i, j int) bool { return ims[i].Partition < ims[j].Partition })
}

type zipCloser struct {
	f *os.File
	a *factoryzip.Archive
}

func (z zipCloser) Close() error {
	err := z.a.Close()
	if e := z.f.Close(); err == nil {
		err = e
	}
	return err
}

func openZip(path string, size int64, opts FirmwareOptions) (*Firmware, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening firmware: %w", err)
	}
	a, err := factoryzip.Open(f, size, &factoryzip.Options{TempDir: opts.TempDir})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening firmware %s: %w", path, err)
	}
	fw := &Firmware{Source: path, Info: a.AndroidInfo, closer: zipCloser{f, a}}
	add := func(e factoryzip.Entry) {
		if e.Partition == "" || checkPartitionName(e.Partition) != nil {
			return
		}

		fw.Images = append(fw.Images, Image{Name: e.Name, Partition: e.Partition, Path: path + "!" + e.Path, Size: e.Size,
			open: func() (ReaderAtCloser, error) {
				r, err := a.OpenEntry(&e)
				if err != nil {
					return nil, err
				}
				return nopCloser{r}, nil
			}})
	}
	for _, e := range a.Files {
		add(e)
	}
	for _, e := range a.Images {
		add(e)
	}
	sortImages(fw.Images)
	if fw.Info == nil {
		fw.Close()
		return nil, fmt.Errorf("opening firmware %s: %w", path, ErrNoAndroidInfo)
	}
	return fw, nil
}

func checkPartitionName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("partition name %q: empty or longer than 64 bytes", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("partition name %q: only letters, digits, '_', '-' and '.' are allowed", s)
		}
	}
	return nil
}
