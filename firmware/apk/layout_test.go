package apk

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestLayoutAgainstZipalign checks Misaligned against the real `zipalign -c -p 4` on every APK of
// androguard's examples and apksig's test suite that provkit can read: provkit must call an APK
// misaligned exactly when zipalign does.
func TestLayoutAgainstZipalign(t *testing.T) {
	if _, err := os.Stat(filepath.Join(androguardDir, ".done")); err != nil {
		testtool.Missing(t, "androguard's test APKs are not fetched: run scripts/fetch-testdata.sh")
	}
	zipalign := testtool.Require(t, "zipalign")[0]
	var files []string
	for _, sub := range []string{"apks", "apksig"} {
		m, _ := filepath.Glob(filepath.Join(androguardDir, sub, "*.apk"))
		files = append(files, m...)
	}
	if testing.Short() && len(files) > 40 {
		files = files[:40]
	}
	checked, misaligned, unreadable := 0, 0, 0
	for _, p := range files {
		layout, err := LayoutFile(context.Background(), p)
		if errors.Is(err, ErrMalformed) {
			continue // zipalign's own reader is laxer; a malformed APK is refused before any layout question
		}
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		var bad []string
		for _, e := range layout {
			if _, b := e.Misaligned(); b {
				bad = append(bad, e.Name)
			}
		}
		out, err := exec.Command(zipalign, "-c", "-p", "4", p).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("zipalign: %v", err)
		}
		if bytes.Contains(out, []byte("Unable to open")) {
			unreadable++ // zipalign's reader refuses what apksig's accepts (data between CD and EOCD)
			continue
		}
		if (len(bad) > 0) != (err != nil) {
			t.Errorf("%s: provkit finds misaligned %v, zipalign -c -p 4 says %v", filepath.Base(p), bad, err)
		}
		checked++
		if len(bad) > 0 {
			misaligned++
		}
	}
	if checked < 20 || misaligned == 0 || misaligned == checked {
		t.Fatalf("checked %d APKs, %d misaligned: the corpus does not exercise both answers", checked, misaligned)
	}
	if unreadable > 2 {
		t.Errorf("zipalign could not open %d APKs provkit reads", unreadable)
	}
	t.Logf("%d APKs agree with zipalign, %d of them misaligned (%d zipalign cannot open)", checked, misaligned, unreadable)
}

func TestLayoutMalformed(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("PK\x03\x04 not a zip"), []byte("PK\x05\x06" + string(make([]byte, 18)))} {
		l, err := Layout(context.Background(), bytes.NewReader(data), int64(len(data)))
		if len(data) == 22 && err == nil && len(l) == 0 {
			continue // an empty archive has no entries
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %v, %v; want a format error", data, l, err)
		}
	}
}

func FuzzLayout(f *testing.F) {
	for _, s := range suiteSeeds(f, 4) {
		f.Add(s)
	}
	f.Add(fixtureBytes(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Layout(context.Background(), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("non-format error from a byte slice: %v", err)
			}
			return
		}
		for _, e := range l {
			if e.DataOffset < 0 || e.DataOffset > int64(len(data)) {
				t.Fatalf("entry %q: data offset %d outside the %d-byte archive", e.Name, e.DataOffset, len(data))
			}
		}
	})
}

// BenchmarkLayout reads the entry layout of every APK of androguard's examples (what
// `provkit patch` does once per app, next to verification).
func BenchmarkLayout(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(androguardDir, "apks", "*.apk"))
	if len(files) == 0 {
		b.Skip("androguard's test APKs are not fetched: run scripts/fetch-testdata.sh")
	}
	var data [][]byte
	total := 0
	for _, p := range files {
		d, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, d)
		total += len(d)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, d := range data {
			_, _ = Layout(context.Background(), bytes.NewReader(d), int64(len(d)))
		}
	}
}
