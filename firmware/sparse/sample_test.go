package sparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/internal/samplefacts"
)

// facts reads testdata/facts.tsv: file (base name) -> key -> values.
func facts(t *testing.T) map[string]map[string][]string {
	t.Helper()
	all, err := samplefacts.LoadFile("testdata/facts.tsv", func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string][]string{}
	for _, f := range all {
		name := path.Base(f.File)
		if m[name] == nil {
			m[name] = map[string][]string{}
		}
		m[name][f.Key] = append(m[name][f.Key], f.Value)
	}
	return m
}

func one(t *testing.T, f map[string][]string, key string) string {
	t.Helper()
	v := f[key]
	if len(v) != 1 {
		t.Fatalf("facts: key %q has %d values", key, len(v))
	}
	return v[0]
}

func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRealSamples reads the sparse images AOSP committed as test data and checks every fact the
// independent decoder recorded, and the bytes of the raw originals committed beside them.
func TestRealSamples(t *testing.T) {
	all := facts(t)
	samples := map[string]string{
		"sparse_test.bin":         "sparse_test_raw.bin",
		"sparse_test_blk1024.bin": "sparse_test_raw.bin",
		"test_file.bin.sparse":    "test_file.bin",
	}
	for name, rawName := range samples {
		t.Run(name, func(t *testing.T) {
			f := all[name]
			if f == nil {
				t.Fatalf("no facts for %s", name)
			}
			data, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile("testdata/" + rawName)
			if err != nil {
				t.Fatal(err)
			}
			if one(t, f, "format") != "android-sparse" {
				t.Fatalf("facts say %s is %s", name, one(t, f, "format"))
			}
			if !IsSparse(bytes.NewReader(data)) {
				t.Fatal("IsSparse = false")
			}
			im, err := Open(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			h := im.Header()
			for key, got := range map[string]uint64{
				"sparse.major": uint64(h.Major), "sparse.minor": uint64(h.Minor),
				"sparse.file_hdr_sz": uint64(h.FileHeaderSize), "sparse.chunk_hdr_sz": uint64(h.ChunkHeaderSize),
				"sparse.block_size": uint64(h.BlockSize), "sparse.total_blocks": uint64(h.TotalBlocks),
				"sparse.total_chunks": uint64(h.TotalChunks), "sparse.image_checksum": uint64(h.ImageChecksum),
				"unsparsed_size": uint64(im.Size()),
			} {
				if want := atoi(t, one(t, f, key)); got != want {
					t.Errorf("%s = %d, facts say %d", key, got, want)
				}
			}
			counts := map[string]uint64{}
			var seq []string
			for _, c := range im.Chunks() {
				counts[TypeName(c.Type)]++
				seq = append(seq, fmt.Sprintf("%sx%d", TypeName(c.Type), c.Blocks))
			}
			for _, typ := range []string{"RAW", "FILL", "DONT_CARE", "CRC32"} {
				want := uint64(0)
				if v, ok := f["sparse.chunks."+typ]; ok {
					want = atoi(t, v[0])
				}
				if counts[typ] != want {
					t.Errorf("%s chunks = %d, facts say %d", typ, counts[typ], want)
				}
			}
			if got, want := strings.Join(seq, " "), one(t, f, "sparse.chunk_sequence"); got != want {
				t.Errorf("chunk sequence\n got %s\nwant %s", got, want)
			}
			var out bytes.Buffer
			if _, err := im.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(out.Bytes())
			if got, want := hex.EncodeToString(sum[:]), one(t, f, "unsparsed_sha256"); got != want {
				t.Errorf("expanded sha256 %s, facts say %s", got, want)
			}
			if !bytes.Equal(out.Bytes(), raw) {
				t.Errorf("expanded image differs from %s", rawName)
			}
			// Random access agrees with the stream.
			got, err := io.ReadAll(io.NewSectionReader(im, 0, im.Size()))
			if err != nil || !bytes.Equal(got, raw) {
				t.Errorf("ReadAt view differs from %s (err %v)", rawName, err)
			}
			checkReadAt(t, im, raw, 500)
		})
	}
}
