package payload

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrNotOTA is returned for a zip without payload.bin.
var ErrNotOTA = errors.New("not an A/B OTA zip: no payload.bin entry")

// Names inside an OTA zip.
const (
	PayloadEntry    = "payload.bin"
	PropertiesEntry = "payload_properties.txt"
	MetadataEntry   = "META-INF/com/android/metadata"
	MetadataPBEntry = "META-INF/com/android/metadata.pb"
	maxTextEntry    = 1 << 20
)

// OTA is an opened A/B OTA zip.
type OTA struct {
	Payload *Payload
	// PayloadOffset is where payload.bin's bytes start in the zip.
	PayloadOffset int64
	// Entries are the zip entry names in central-directory order.
	Entries []string
	// Properties is payload_properties.txt (FILE_HASH, FILE_SIZE, METADATA_HASH, METADATA_SIZE).
	Properties map[string]string
	// Metadata is META-INF/com/android/metadata (ota-type, pre-device, post-build, ...).
	Metadata map[string]string

	zr *zip.Reader
	r  io.ReaderAt
}

// OpenOTA opens an OTA zip of the given size and its payload.bin in place. payload.bin must be
// stored uncompressed, as ota_from_target_files writes it (update_engine streams it by offset).
func OpenOTA(r io.ReaderAt, size int64) (*OTA, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("reading OTA zip: %w", err)
	}
	o := &OTA{zr: zr, r: r}
	var pf *zip.File
	for _, f := range zr.File {
		o.Entries = append(o.Entries, f.Name)
		if f.Name == PayloadEntry {
			pf = f
		}
	}
	if pf == nil {
		return nil, ErrNotOTA
	}
	if pf.Method != zip.Store {
		return nil, fmt.Errorf("reading OTA zip: payload.bin is compressed (method %d); OTA zips store it uncompressed: %w", pf.Method, ErrUnsupported)
	}
	off, err := pf.DataOffset()
	if err != nil {
		return nil, fmt.Errorf("reading OTA zip: locating payload.bin: %w", err)
	}
	psize := int64(pf.CompressedSize64)
	if off < 0 || psize < 0 || off > size || psize > size-off {
		return nil, fmt.Errorf("reading OTA zip: payload.bin at offset %d+%d runs past the zip end %d: %w", off, psize, size, ErrCorrupt)
	}
	o.PayloadOffset = off
	if o.Payload, err = Open(io.NewSectionReader(r, off, psize), psize); err != nil {
		return nil, fmt.Errorf("reading payload.bin at zip offset %d: %w", off, err)
	}
	if o.Properties, err = o.readKV(PropertiesEntry); err != nil {
		return nil, err
	}
	if o.Metadata, err = o.readKV(MetadataEntry); err != nil {
		return nil, err
	}
	return o, nil
}

// readKV reads a small key=value text entry; a missing entry gives an empty map.
func (o *OTA) readKV(name string) (map[string]string, error) {
	m := map[string]string{}
	for _, f := range o.zr.File {
		if f.Name != name {
			continue
		}
		if f.UncompressedSize64 > maxTextEntry {
			return nil, fmt.Errorf("reading %s in OTA zip: %d bytes exceed %d: %w", name, f.UncompressedSize64, maxTextEntry, ErrCorrupt)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("reading %s in OTA zip: %w", name, err)
		}
		defer rc.Close()
		sc := bufio.NewScanner(io.LimitReader(rc, maxTextEntry))
		sc.Buffer(make([]byte, 64<<10), maxTextEntry)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				m[k] = v
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading %s in OTA zip: %w", name, err)
		}
	}
	return m, nil
}

// PropertyCheck is the outcome of checking payload_properties.txt against payload.bin.
type PropertyCheck struct {
	FileHashOK, FileSizeOK, MetadataHashOK, MetadataSizeOK bool
}

// CheckProperties recomputes FILE_HASH (SHA-256 of payload.bin), FILE_SIZE, METADATA_HASH (SHA-256
// of header + manifest) and METADATA_SIZE and compares them with payload_properties.txt.
func (o *OTA) CheckProperties(ctx context.Context) (PropertyCheck, error) {
	var c PropertyCheck
	p := o.Payload
	h := sha256.New()
	if err := copyCtx(ctx, h, io.NewSectionReader(p.r, 0, p.size)); err != nil {
		return c, fmt.Errorf("hashing payload.bin: %w", err)
	}
	c.FileHashOK = o.Properties["FILE_HASH"] == base64.StdEncoding.EncodeToString(h.Sum(nil))
	c.FileSizeOK = o.Properties["FILE_SIZE"] == strconv.FormatInt(p.size, 10)
	md, err := p.MetadataSHA256()
	if err != nil {
		return c, err
	}
	c.MetadataHashOK = o.Properties["METADATA_HASH"] == base64.StdEncoding.EncodeToString(md)
	c.MetadataSizeOK = o.Properties["METADATA_SIZE"] == strconv.FormatInt(p.MetadataSize(), 10)
	return c, nil
}

func copyCtx(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		w.Write(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// CheckPropertyFiles checks the ota-property-files (or ota-streaming-property-files) list of the
// metadata: every "name:offset:size" must be where the named entry's bytes are in the zip, as the
// streaming A/B updater relies on. payload_metadata.bin is the payload's header, manifest and
// metadata signature.
func (o *OTA) CheckPropertyFiles() error {
	spec := o.Metadata["ota-property-files"]
	if spec == "" {
		spec = o.Metadata["ota-streaming-property-files"]
	}
	if spec = strings.TrimSpace(spec); spec == "" {
		return fmt.Errorf("checking OTA property files: the metadata lists none")
	}
	for _, item := range strings.Split(spec, ",") {
		parts := strings.Split(item, ":")
		if len(parts) != 3 {
			return fmt.Errorf("checking OTA property files: malformed item %q", item)
		}
		off, err1 := strconv.ParseInt(parts[1], 10, 64)
		n, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("checking OTA property files: malformed item %q", item)
		}
		var wantOff, wantSize int64
		switch parts[0] {
		case "payload_metadata.bin":
			wantOff = o.PayloadOffset
			wantSize = o.Payload.MetadataSize() + int64(o.Payload.MetadataSignatureSize)
		default:
			name := parts[0]
			if name == "metadata" || name == "metadata.pb" {
				name = "META-INF/com/android/" + name
			}
			f := o.file(name)
			if f == nil {
				return fmt.Errorf("checking OTA property files: %q names no zip entry", item)
			}
			if wantOff, err1 = f.DataOffset(); err1 != nil {
				return fmt.Errorf("checking OTA property files: locating %s: %w", name, err1)
			}
			wantSize = int64(f.CompressedSize64)
		}
		if off != wantOff || n != wantSize {
			return fmt.Errorf("checking OTA property files: %q, but the bytes are at %d:%d", item, wantOff, wantSize)
		}
	}
	return nil
}

func (o *OTA) file(name string) *zip.File {
	for _, f := range o.zr.File {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// ReadEntry returns a small entry's bytes (at most 1 MiB), e.g. META-INF/com/android/metadata.pb.
func (o *OTA) ReadEntry(name string) ([]byte, error) {
	f := o.file(name)
	if f == nil {
		return nil, fmt.Errorf("reading %s in OTA zip: no such entry", name)
	}
	if f.UncompressedSize64 > maxTextEntry {
		return nil, fmt.Errorf("reading %s in OTA zip: %d bytes exceed %d", name, f.UncompressedSize64, maxTextEntry)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s in OTA zip: %w", name, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(rc, maxTextEntry+1)); err != nil {
		return nil, fmt.Errorf("reading %s in OTA zip: %w", name, err)
	}
	return b.Bytes(), nil
}
