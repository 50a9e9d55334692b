package unixmode

import (
	"io/fs"
	"testing"
)

func TestFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		want fs.FileMode
	}{
		{IFREG | 0o644, 0o644},
		{IFDIR | 0o755, fs.ModeDir | 0o755},
		{IFLNK | 0o777, fs.ModeSymlink | 0o777},
		{IFCHR | 0o600, fs.ModeDevice | fs.ModeCharDevice | 0o600},
		{IFBLK | 0o600, fs.ModeDevice | 0o600},
		{IFIFO | 0o600, fs.ModeNamedPipe | 0o600},
		{IFSOCK | 0o600, fs.ModeSocket | 0o600},
		{IFREG | 0o4755, fs.ModeSetuid | 0o755},
		{IFREG | 0o2755, fs.ModeSetgid | 0o755},
		{IFDIR | 0o1777, fs.ModeDir | fs.ModeSticky | 0o777},
		{0o644, 0o644}, // no type bits: a regular file to io/fs
	} {
		if got := FileMode(tc.mode); got != tc.want {
			t.Errorf("FileMode(%#o) = %v, want %v", tc.mode, got, tc.want)
		}
		if back := Unix(tc.want); back != tc.mode && back != tc.mode|IFREG {
			t.Errorf("Unix(%v) = %#o, want %#o", tc.want, back, tc.mode)
		}
	}
}
