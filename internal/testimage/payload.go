package testimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// Proto writes protobuf wire format: just the varint and length-delimited fields a payload
// manifest needs (update_metadata.proto). B holds what was written; calls chain.
type Proto struct{ B []byte }

// Varint appends a varint field.
func (p *Proto) Varint(field int, v uint64) *Proto {
	p.B = binary.AppendUvarint(p.B, uint64(field)<<3)
	p.B = binary.AppendUvarint(p.B, v)
	return p
}

// Field appends a length-delimited field (bytes, a string or an embedded message).
func (p *Proto) Field(field int, v []byte) *Proto {
	p.B = binary.AppendUvarint(p.B, uint64(field)<<3|2)
	p.B = binary.AppendUvarint(p.B, uint64(len(v)))
	p.B = append(p.B, v...)
	return p
}

// FullPayload writes a full A/B OTA payload.bin (major version 2, unsigned) as
// ota_from_target_files lays out a full update: each partition cut in 2 MiB operations,
// REPLACE_XZ for data and ZERO for blocks of zeros, with every operation's data SHA-256 and the
// partition's new size and SHA-256. parts maps partition names to their images (a multiple of
// 4096 bytes).
func FullPayload(t testing.TB, parts map[string][]byte) []byte {
	t.Helper()
	const block, opBlocks = 4096, 512
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	sort.Strings(names)
	var data []byte
	m := (&Proto{}).Varint(3, block)
	for _, name := range names {
		img := parts[name]
		if len(img)%block != 0 {
			t.Fatalf("partition %s: %d bytes is not a multiple of %d", name, len(img), block)
		}
		sum := sha256.Sum256(img)
		pu := (&Proto{}).Field(1, []byte(name)).Field(7, (&Proto{}).Varint(1, uint64(len(img))).Field(2, sum[:]).B)
		for start := 0; start < len(img)/block; start += opBlocks {
			n := min(opBlocks, len(img)/block-start)
			chunk := img[start*block : (start+n)*block]
			ext := (&Proto{}).Varint(1, uint64(start)).Varint(2, uint64(n)).B
			op := &Proto{}
			if bytes.Count(chunk, []byte{0}) == len(chunk) {
				op.Varint(1, 6) // ZERO
			} else {
				var buf bytes.Buffer
				w, err := xz.NewWriter(&buf)
				if err != nil {
					t.Fatal(err)
				}
				w.Write(chunk)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				h := sha256.Sum256(buf.Bytes())
				op.Varint(1, 8).Varint(2, uint64(len(data))).Varint(3, uint64(buf.Len())).Field(8, h[:]) // REPLACE_XZ
				data = append(data, buf.Bytes()...)
			}
			op.Field(6, ext)
			pu.Field(8, op.B)
		}
		m.Field(13, pu.B)
	}
	h := make([]byte, 24)
	copy(h, "CrAU")
	binary.BigEndian.PutUint64(h[4:], 2)
	binary.BigEndian.PutUint64(h[12:], uint64(len(m.B)))
	return append(append(h, m.B...), data...)
}

// OTAZip writes an A/B OTA zip as ota_from_target_files lays it out: payload.bin stored, its
// payload_properties.txt (FILE_HASH, FILE_SIZE, METADATA_HASH, METADATA_SIZE) and
// META-INF/com/android/metadata with the given keys (ota-type=AB added). It is not signed.
func OTAZip(t testing.TB, path string, payload []byte, metadata map[string]string) {
	t.Helper()
	if len(payload) < 24 {
		t.Fatalf("payload of %d bytes has no header", len(payload))
	}
	fileHash := sha256.Sum256(payload)
	metaSize := 24 + binary.BigEndian.Uint64(payload[12:20])
	if metaSize > uint64(len(payload)) {
		t.Fatalf("payload manifest runs past its end")
	}
	metaHash := sha256.Sum256(payload[:metaSize])
	props := fmt.Sprintf("FILE_HASH=%s\nFILE_SIZE=%d\nMETADATA_HASH=%s\nMETADATA_SIZE=%d\n",
		base64.StdEncoding.EncodeToString(fileHash[:]), len(payload), base64.StdEncoding.EncodeToString(metaHash[:]), metaSize)
	keys := []string{"ota-type=AB"}
	for k, v := range metadata {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	Zip(t, path, []ZipEntry{
		{Name: "payload.bin", Data: payload},
		{Name: "payload_properties.txt", Data: []byte(props)},
		{Name: "META-INF/com/android/metadata", Data: []byte(strings.Join(keys, "\n") + "\n")},
	})
}
