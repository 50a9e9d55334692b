package apk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EntryLayout is how one ZIP entry of an APK is stored: what zipalign -c and Soong's
// check_prebuilt_presigned_apk.py look at.
type EntryLayout struct {
	Name string `json:"name"`
	// Stored is true when the entry is not compressed (method 0, STORED).
	Stored bool `json:"stored"`
	// DataOffset is the file offset of the entry's data (after its local header and extra field).
	DataOffset int64 `json:"dataOffset"`
	// Size is the entry's uncompressed size.
	Size uint64 `json:"size"`
}

// Layout reads where and how every file entry of the APK is stored, in central-directory order.
// A malformed archive is an error (a *FormatError, matching ErrMalformed) naming the offset.
func Layout(ctx context.Context, r io.ReaderAt, size int64) ([]EntryLayout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z, err := openZip(r, size)
	if err != nil {
		return nil, err
	}
	limit := z.cdOffset
	sb, err := findSigningBlock(r, z)
	switch {
	case err == nil:
		limit = sb.offset
	case errors.Is(err, errNoSigningBlock):
	default:
		return nil, err
	}
	errs, _, err := z.checkLocalHeaders(limit)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	out := make([]EntryLayout, 0, len(z.entries))
	for _, e := range z.entries {
		out = append(out, EntryLayout{Name: e.name, Stored: e.method == methodStored, DataOffset: e.dataOffset, Size: e.usize})
	}
	return out, nil
}

// LayoutFile is Layout on the APK at path.
func LayoutFile(ctx context.Context, path string) ([]EntryLayout, error) {
	f, size, err := openAPK(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := Layout(ctx, f, size)
	if err != nil {
		return nil, fmt.Errorf("reading the layout of %s: %w", path, err)
	}
	return l, nil
}

// Misaligned reports whether an entry fails `zipalign -c -p 4`: a stored entry whose data does not
// start on a 4-byte boundary, or a stored shared library (*.so) not on a 4096-byte page boundary.
// Compressed entries are never misaligned (zipalign leaves them where they are). It returns the
// alignment the entry needs and whether it has it.
func (e EntryLayout) Misaligned() (need int64, bad bool) {
	if !e.Stored {
		return 0, false
	}
	need = 4
	if strings.HasSuffix(e.Name, ".so") {
		need = 4096
	}
	return need, e.DataOffset%need != 0
}
