package image

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/layout"
	"github.com/provkit/provkit/firmware/sparse"
)

func TestExplain(t *testing.T) {
	if Explain(nil) != nil {
		t.Fatal("Explain(nil) is not nil")
	}
	plain := fmt.Errorf("reading x: %w", fs.ErrNotExist)
	if got := Explain(plain); got != plain {
		t.Fatalf("an error without advice changed: %v", got)
	}
	for _, tc := range []struct {
		err    error
		advice string
	}{
		{fmt.Errorf("reading ext4 file system system.img: %w", ext4.ErrCorrupt), "copy it again"},
		{fmt.Errorf("reading sparse image s.img: chunk 3: %w", sparse.ErrChecksum), "copy it again"},
		{fmt.Errorf("reading a.zip: %w", ErrNotFirmware), "give a partition image"},
		{fmt.Errorf("resolving /odm/x: %w (partitions: system)", layout.ErrNotMounted), "<partition>:/path"},
	} {
		got := Explain(tc.err)
		if !strings.HasPrefix(got.Error(), tc.err.Error()+"; ") || !strings.Contains(got.Error(), tc.advice) {
			t.Errorf("Explain(%v) = %q, want the error then %q", tc.err, got, tc.advice)
		}
		if !errors.Is(got, errors.Unwrap(tc.err)) {
			t.Errorf("Explain(%v) no longer matches its sentinel", tc.err)
		}
	}
}
