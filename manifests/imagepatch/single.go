package imagepatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runSingle patches one image file given alone (product.img, super.img): the output is one file
// of the same kind at o.Out. The file is linked into a temporary directory beside the output, as
// the only image of a firmware directory, and patched as such; no vbmeta image comes with it, so
// the report notes that none describes the partition.
func runSingle(ctx context.Context, o Options) (*Report, error) {
	base := filepath.Base(o.Input)
	if ext := filepath.Ext(base); ext != ".img" && ext != ".simg" {
		return nil, fmt.Errorf("patching %s: %w: a single image is named by its partition (product.img, product_a.img, super.img) so that image patch knows which partition it is; rename it", o.Input, ErrUnsupported)
	}
	parent, prefix := os.TempDir(), "provkit-image-patch-"
	if !o.DryRun {
		if _, err := os.Lstat(o.Out); err == nil {
			return nil, fmt.Errorf("writing %s: it exists; image patch never overwrites: choose a new --out", o.Out)
		}
		if strings.HasSuffix(strings.ToLower(o.Out), ".zip") {
			return nil, fmt.Errorf("writing %s: %w: a single image is written as a single image: give a file name for --out", o.Out, ErrUnsupported)
		}
		parent, prefix = filepath.Dir(filepath.Clean(o.Out)), "."+filepath.Base(o.Out)+".tmp-"
	}
	work, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("creating the temporary area: %w", err)
	}
	defer os.RemoveAll(work)
	stage := filepath.Join(work, "in")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(o.Input)
	if err != nil {
		return nil, err
	}
	// a symbolic link: nothing is copied, and the input is only ever opened for reading
	if err := os.Symlink(abs, filepath.Join(stage, base)); err != nil {
		return nil, fmt.Errorf("creating the temporary area: %w", err)
	}
	inner := o
	inner.Input, inner.Out, inner.staged = stage, filepath.Join(work, "out"), true
	rep, err := Run(ctx, inner)
	if rep != nil {
		rep.Input, rep.Output = o.Input, ""
		for i := range rep.Notes {
			rep.Notes[i] = strings.ReplaceAll(rep.Notes[i], filepath.Join(stage, base), o.Input)
		}
	}
	if err != nil {
		return rep, &renamedError{err: err, msg: strings.ReplaceAll(err.Error(), filepath.Join(stage, base), o.Input)}
	}
	if o.DryRun {
		return rep, nil
	}
	patched := filepath.Join(work, "out", base)
	if _, err := os.Stat(patched); err != nil {
		return nil, fmt.Errorf("patching %s: no patched image was written: %w", o.Input, err)
	}
	if err := os.Rename(patched, o.Out); err != nil {
		return nil, fmt.Errorf("renaming the output into place: %w", err)
	}
	rep.Output = o.Out
	return rep, nil
}
