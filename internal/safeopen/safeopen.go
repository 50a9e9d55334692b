package safeopen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular says a path is not a regular file (nor a block device where one is allowed).
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading if it is a regular file.
func Open(path string) (*os.File, error) { return open(path, false) }

// OpenImage opens path for reading if it is a regular file or a block device (a partition read
// from /dev/block or a USB reader).
func OpenImage(path string) (*os.File, error) { return open(path, true) }

func open(path string, allowBlock bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	m := fi.Mode()
	if m.IsRegular() || (allowBlock && m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0) {
		return f, nil
	}
	f.Close()
	want := "a regular file"
	if allowBlock {
		want = "a regular file or a block device"
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is %s, provkit reads only %s", ErrNotRegular, Kind(m), want)}
}

// Kind names a file mode's type for a person.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	}
	return "a regular file"
}
