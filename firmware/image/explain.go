package image

import (
	"errors"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/bootimg"
	"github.com/provkit/provkit/firmware/erofs"
	"github.com/provkit/provkit/firmware/ext4"
	"github.com/provkit/provkit/firmware/factoryzip"
	"github.com/provkit/provkit/firmware/layout"
	"github.com/provkit/provkit/firmware/payload"
	"github.com/provkit/provkit/firmware/sparse"
	"github.com/provkit/provkit/firmware/super"
)

// corruptErrs are the sentinels with which the format packages report bytes that contradict their
// own structure: a truncated, damaged or altered image.
var corruptErrs = []error{
	ext4.ErrCorrupt, ext4.ErrChecksum, erofs.ErrCorrupt, sparse.ErrCorrupt, sparse.ErrChecksum,
	super.ErrCorrupt, super.ErrChecksum, avb.ErrCorrupt, bootimg.ErrCorrupt, payload.ErrCorrupt,
	payload.ErrHashMismatch, factoryzip.ErrCorrupt,
}

// Advice for the user, by kind of error.
const (
	adviceCorrupt = "the image is truncated, damaged or was changed after it was built: copy it again " +
		"from the build output or the vendor's download and compare its checksum"
	adviceNotFirmware = "give a partition image (system.img, raw or sparse), super.img, a factory or OTA zip, " +
		"payload.bin, or a directory of partition images"
	adviceNotMounted = "read a partition's own files as <partition>:/path, or name a single image's " +
		"partition with --partition"
)

// Explain adds to err what the user can do about it, for the errors where that is clear: a corrupt
// image, an input that is no firmware image, a device path no partition holds. Other errors, and
// nil, are returned unchanged. The result still matches the same sentinels with errors.Is.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	var advice string
	switch {
	case errors.Is(err, ErrNotFirmware):
		advice = adviceNotFirmware
	case errors.Is(err, layout.ErrNotMounted):
		advice = adviceNotMounted
	default:
		for _, c := range corruptErrs {
			if errors.Is(err, c) {
				advice = adviceCorrupt
				break
			}
		}
	}
	if advice == "" {
		return err
	}
	return &explained{err: err, advice: advice}
}

// explained is an error with advice for the user.
type explained struct {
	err    error
	advice string
}

func (e *explained) Error() string { return e.err.Error() + "; " + e.advice }
func (e *explained) Unwrap() error { return e.err }
