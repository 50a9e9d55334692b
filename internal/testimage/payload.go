package testimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"testing"

	"github.com/ulikunitz/xz"
)

// pbuf writes protobuf wire format: just the varint and length-delimited fields a payload
// manifest needs.
type pbuf struct{ b []byte }

func (p *pbuf) varint(field int, v uint64) *pbuf {
	p.b = binary.AppendUvarint(p.b, uint64(field)<<3)
	p.b = binary.AppendUvarint(p.b, v)
	return p
}

func (p *pbuf) bytes(field int, v []byte) *pbuf {
	p.b = binary.AppendUvarint(p.b, uint64(field)<<3|2)
	p.b = binary.AppendUvarint(p.b, uint64(len(v)))
	p.b = append(p.b, v...)
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
	m := (&pbuf{}).varint(3, block)
	for _, name := range names {
		img := parts[name]
		if len(img)%block != 0 {
			t.Fatalf("partition %s: %d bytes is not a multiple of %d", name, len(img), block)
		}
		sum := sha256.Sum256(img)
		pu := (&pbuf{}).bytes(1, []byte(name)).bytes(7, (&pbuf{}).varint(1, uint64(len(img))).bytes(2, sum[:]).b)
		for start := 0; start < len(img)/block; start += opBlocks {
			n := min(opBlocks, len(img)/block-start)
			chunk := img[start*block : (start+n)*block]
			ext := (&pbuf{}).varint(1, uint64(start)).varint(2, uint64(n)).b
			op := &pbuf{}
			if bytes.Count(chunk, []byte{0}) == len(chunk) {
				op.varint(1, 6) // ZERO
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
				op.varint(1, 8).varint(2, uint64(len(data))).varint(3, uint64(buf.Len())).bytes(8, h[:]) // REPLACE_XZ
				data = append(data, buf.Bytes()...)
			}
			op.bytes(6, ext)
			pu.bytes(8, op.b)
		}
		m.bytes(13, pu.b)
	}
	h := make([]byte, 24)
	copy(h, "CrAU")
	binary.BigEndian.PutUint64(h[4:], 2)
	binary.BigEndian.PutUint64(h[12:], uint64(len(m.b)))
	return append(append(h, m.b...), data...)
}
