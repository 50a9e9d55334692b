package adb

import (
	"context"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
	"github.com/provkit/provkit/provision/adb/wire"
)

// FileInfo describes a file on the device, from a sync STAT/STA2/LST2 or a directory listing.
type FileInfo struct {
	Name    string      `json:"name"`
	Mode    fs.FileMode `json:"mode"`
	Size    int64       `json:"size"`
	ModTime time.Time   `json:"modTime"`
	UID     uint32      `json:"uid,omitempty"` // v2 records only
	GID     uint32      `json:"gid,omitempty"`
}

// RemoteFileError is a sync FAIL from the device about one path, with the device's message. It
// matches fs.ErrNotExist or fs.ErrPermission with errors.Is when the message says so.
type RemoteFileError struct {
	Path    string
	Message string
}

func (e *RemoteFileError) Error() string {
	return fmt.Sprintf("%s: device says: %s", e.Path, e.Message)
}

// Is maps the device's errno text onto fs errors.
func (e *RemoteFileError) Is(target error) bool {
	m := strings.ToLower(e.Message)
	switch target {
	case fs.ErrNotExist:
		return strings.Contains(m, "no such file") || strings.Contains(m, "does not exist")
	case fs.ErrPermission:
		return strings.Contains(m, "permission denied") || strings.Contains(m, "read-only file system") || strings.Contains(m, "operation not permitted")
	}
	return false
}

// linuxMode converts the st_mode the sync protocol carries to an fs.FileMode.
func linuxMode(m uint32) fs.FileMode { return unixmode.FileMode(m) }

// unixMode converts an fs.FileMode for a regular file to the st_mode SEND carries.
func unixMode(m fs.FileMode) uint32 { return unixmode.Unix(m &^ fs.ModeType) }

func infoV2(name string, st wire.StatV2) FileInfo {
	return FileInfo{Name: name, Mode: linuxMode(st.Mode), Size: int64(st.Size), ModTime: time.Unix(st.MTime, 0), UID: st.UID, GID: st.GID}
}

// errnoError turns a v2 stat errno into an error matching fs errors.
func errnoError(errno uint32) error {
	switch errno {
	case 2:
		return fs.ErrNotExist
	case 1, 13:
		return fs.ErrPermission
	case 20:
		return fmt.Errorf("not a directory (errno 20)")
	}
	return fmt.Errorf("errno %d", errno)
}

// Sync is one sync: session with a device: file operations run one after another on one stream.
// A Sync is not safe for concurrent use; open one per goroutine (they are cheap).
type Sync struct {
	d      *Device
	ctx    context.Context
	s      Stream
	r      *wire.SyncReader
	f      Features
	broken error // set when the device ended the session (after a FAIL) or the link broke
}

// OpenSync starts a sync session. ctx bounds the session's whole life.
func (d *Device) OpenSync(ctx context.Context) (*Sync, error) {
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	s, err := d.open(ctx, "starting file sync", "sync:")
	if err != nil {
		return nil, err
	}
	return &Sync{d: d, ctx: ctx, s: s, r: wire.NewSyncReader(s), f: f}, nil
}

// Close ends the session (QUIT) and its stream.
func (y *Sync) Close() error {
	if y.broken == nil {
		wire.WriteSyncRequest(y.s, wire.SyncQUIT, "")
	}
	return y.s.Close()
}

func (y *Sync) fail(op string, err error) error {
	var fe *wire.SyncFailError
	if errors.As(err, &fe) {
		// adbd ends the sync service after a FAIL.
		y.broken = err
	} else if y.broken == nil {
		y.broken = err
	}
	return y.d.fail(y.ctx, op, err)
}

func (y *Sync) usable(op string) error {
	if y.broken != nil {
		return &DeviceError{Op: op, Serial: y.d.Serial(), Err: fmt.Errorf("sync session unusable after an earlier failure: %w", y.broken)}
	}
	return nil
}

// Stat returns information about path, following a final symlink when the device supports
// stat_v2 (and not otherwise). A missing path matches fs.ErrNotExist.
func (y *Sync) Stat(path string) (FileInfo, error) { return y.stat(path, true) }

// Lstat returns information about path itself (a symlink is not followed).
func (y *Sync) Lstat(path string) (FileInfo, error) { return y.stat(path, false) }

func (y *Sync) stat(path string, follow bool) (FileInfo, error) {
	op := "getting the status of " + path
	if err := y.usable(op); err != nil {
		return FileInfo{}, err
	}
	name := pathBase(path)
	if y.f.Has(FeatureStatV2) {
		id := wire.SyncLST2
		if follow {
			id = wire.SyncSTA2
		}
		if err := wire.WriteSyncRequest(y.s, id, path); err != nil {
			return FileInfo{}, y.fail(op, err)
		}
		st, err := y.r.ReadStatV2(id)
		if err != nil {
			return FileInfo{}, y.fail(op, err)
		}
		if st.Error != 0 {
			return FileInfo{}, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: &fs.PathError{Op: "stat", Path: path, Err: errnoError(st.Error)}}
		}
		return infoV2(name, st), nil
	}
	if err := wire.WriteSyncRequest(y.s, wire.SyncSTAT, path); err != nil {
		return FileInfo{}, y.fail(op, err)
	}
	st, err := y.r.ReadStatV1()
	if err != nil {
		return FileInfo{}, y.fail(op, err)
	}
	if st.Mode == 0 && st.Size == 0 && st.MTime == 0 {
		// STAT v1 answers all zeros for a path it cannot stat.
		return FileInfo{}, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}}
	}
	return FileInfo{Name: name, Mode: linuxMode(st.Mode), Size: int64(st.Size), ModTime: time.Unix(int64(st.MTime), 0)}, nil
}

// maxListEntries bounds one directory listing.
const maxListEntries = 1 << 20

// List returns the entries of directory dir (without "." and ".."). A listing of a path that is
// not a readable directory is empty, as adbd reports it.
func (y *Sync) List(dir string) ([]FileInfo, error) {
	op := "listing " + dir
	if err := y.usable(op); err != nil {
		return nil, err
	}
	v2 := y.f.Has(FeatureLsV2)
	id := wire.SyncLIST
	if v2 {
		id = wire.SyncLIS2
	}
	if err := wire.WriteSyncRequest(y.s, id, dir); err != nil {
		return nil, y.fail(op, err)
	}
	var out []FileInfo
	for {
		var fi FileInfo
		if v2 {
			d, done, err := y.r.ReadDentV2()
			if err != nil {
				return nil, y.fail(op, err)
			}
			if done {
				return out, nil
			}
			fi = infoV2(d.Name, d.StatV2)
		} else {
			d, done, err := y.r.ReadDent()
			if err != nil {
				return nil, y.fail(op, err)
			}
			if done {
				return out, nil
			}
			fi = FileInfo{Name: d.Name, Mode: linuxMode(d.Mode), Size: int64(d.Size), ModTime: time.Unix(int64(d.MTime), 0)}
		}
		if fi.Name == "." || fi.Name == ".." {
			continue
		}
		if len(out) >= maxListEntries {
			return nil, y.fail(op, fmt.Errorf("more than %d entries", maxListEntries))
		}
		out = append(out, fi)
	}
}

// MaxPullSize is the most any pull accepts, whatever the device declares: 4 GiB, the largest APK
// Android installs (APKs are ZIP files without ZIP64, so no entry or offset can pass 4 GiB) and
// more than any file provkit pulls. A device cannot make provkit fill a disk.
const MaxPullSize = 4 << 30

// ErrPullTooLarge says a device declared, or sent, more bytes than a pull accepts.
var ErrPullTooLarge = errors.New("more data than the file's declared size")

// Pull copies the remote file to w and returns the bytes copied. It first asks the device for the
// file's size (sync STAT) and stops with ErrPullTooLarge as soon as the device sends more than it
// declared, or declares more than MaxPullSize; a device that answers RECV with endless data costs
// at most one chunk beyond the declared size. A refusal from the device (no such file, permission
// denied) is a *RemoteFileError naming the path.
func (y *Sync) Pull(remote string, w io.Writer) (int64, error) {
	return y.PullAtMost(remote, w, MaxPullSize)
}

// PullAtMost is Pull with a ceiling lower than MaxPullSize (the largest size the caller's parser
// accepts).
func (y *Sync) PullAtMost(remote string, w io.Writer, ceiling int64) (int64, error) {
	op := "pulling " + remote
	if ceiling <= 0 || ceiling > MaxPullSize {
		ceiling = MaxPullSize
	}
	fi, err := y.Stat(remote)
	if err != nil {
		return 0, err
	}
	if !fi.Mode.IsRegular() {
		return 0, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: fmt.Errorf("%w: the device says it is not a regular file (%s)", ErrPullTooLarge, fi.Mode.Type())}
	}
	if fi.Size > ceiling {
		return 0, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: fmt.Errorf("%w: the device declares %d bytes, more than the %d accepted", ErrPullTooLarge, fi.Size, ceiling)}
	}
	return y.pull(op, remote, w, fi.Size)
}

func (y *Sync) pull(op, remote string, w io.Writer, limit int64) (int64, error) {
	if err := y.usable(op); err != nil {
		return 0, err
	}
	if err := wire.WriteSyncRequest(y.s, wire.SyncRECV, remote); err != nil {
		return 0, y.fail(op, err)
	}
	var n int64
	for {
		c, err := y.r.ReadChunk()
		if err != nil {
			var fe *wire.SyncFailError
			if errors.As(err, &fe) {
				y.broken = err
				return n, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: &RemoteFileError{Path: remote, Message: fe.Message}}
			}
			return n, y.fail(op, fmt.Errorf("after %d bytes: %w", n, err))
		}
		if c.Done {
			return n, nil
		}
		if n+int64(len(c.Data)) > limit {
			// The rest may never end: the session cannot be reused.
			y.broken = ErrPullTooLarge
			return n, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: fmt.Errorf("%w: the device declared %d bytes and sent more; stopped after %d", ErrPullTooLarge, limit, n)}
		}
		k, err := w.Write(c.Data)
		n += int64(k)
		if err != nil {
			// The rest of the file is still coming: the session cannot be reused.
			y.broken = err
			return n, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: fmt.Errorf("writing the local copy: %w", err)}
		}
	}
}

// Push copies r to the remote path with the given permissions and modification time, and returns
// the bytes sent. The device creates missing parent directories.
func (y *Sync) Push(r io.Reader, remote string, mode fs.FileMode, mtime time.Time) (int64, error) {
	op := "pushing " + remote
	if err := y.usable(op); err != nil {
		return 0, err
	}
	if err := wire.WriteSyncRequest(y.s, wire.SyncSEND, wire.SendV1Path(remote, unixMode(mode))); err != nil {
		return 0, y.fail(op, err)
	}
	buf := make([]byte, wire.SyncDataMax)
	var n int64
	var sendErr error
	for sendErr == nil {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if werr := wire.WriteData(y.s, buf[:k]); werr != nil {
				sendErr = werr
				break
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			y.broken = err
			// The device is waiting for more data; the session cannot be reused.
			return n, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: fmt.Errorf("reading the local file after %d bytes: %w", n, err)}
		}
	}
	if sendErr == nil {
		sendErr = wire.WriteDone(y.s, uint32(mtime.Unix()))
	}
	// Read the device's verdict even after a failed write: a FAIL says why it stopped taking data.
	if err := y.r.ReadStatus(); err != nil {
		var fe *wire.SyncFailError
		if errors.As(err, &fe) {
			y.broken = err
			return n, &DeviceError{Op: op, Serial: y.d.Serial(), State: StateDevice, Err: &RemoteFileError{Path: remote, Message: fe.Message}}
		}
		if sendErr != nil {
			err = sendErr
		}
		return n, y.fail(op, fmt.Errorf("after %d bytes: %w", n, err))
	}
	if sendErr != nil {
		return n, y.fail(op, sendErr)
	}
	return n, nil
}

func pathBase(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	if p == "" {
		return "/"
	}
	return p
}

// withSync runs fn in a fresh sync session.
func (d *Device) withSync(ctx context.Context, fn func(*Sync) error) error {
	y, err := d.OpenSync(ctx)
	if err != nil {
		return err
	}
	defer y.Close()
	return fn(y)
}

// Stat returns information about a remote path (see Sync.Stat).
func (d *Device) Stat(ctx context.Context, path string) (fi FileInfo, err error) {
	err = d.withSync(ctx, func(y *Sync) error { fi, err = y.Stat(path); return err })
	return fi, err
}

// List returns a remote directory's entries (see Sync.List).
func (d *Device) List(ctx context.Context, dir string) (fis []FileInfo, err error) {
	err = d.withSync(ctx, func(y *Sync) error { fis, err = y.List(dir); return err })
	return fis, err
}

// Pull copies a remote file to w (see Sync.Pull).
func (d *Device) Pull(ctx context.Context, remote string, w io.Writer) (n int64, err error) {
	return d.PullAtMost(ctx, remote, w, MaxPullSize)
}

// PullAtMost copies a remote file to w, refusing one larger than ceiling (see Sync.PullAtMost).
func (d *Device) PullAtMost(ctx context.Context, remote string, w io.Writer, ceiling int64) (n int64, err error) {
	err = d.withSync(ctx, func(y *Sync) error { n, err = y.PullAtMost(remote, w, ceiling); return err })
	return n, err
}

// PullFile copies a remote file to the local path. The local file appears whole or not at all: the
// data goes to a temporary file in the same directory, renamed into place once complete.
func (d *Device) PullFile(ctx context.Context, remote, local string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".part*")
	if err != nil {
		return 0, fmt.Errorf("pulling %s from %s: %w", remote, d.Serial(), err)
	}
	defer os.Remove(tmp.Name())
	n, err := d.Pull(ctx, remote, tmp)
	if err != nil {
		tmp.Close()
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("pulling %s from %s: writing %s: %w", remote, d.Serial(), local, err)
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return n, fmt.Errorf("pulling %s from %s: %w", remote, d.Serial(), err)
	}
	return n, nil
}

// Push copies r to a remote file (see Sync.Push).
func (d *Device) Push(ctx context.Context, r io.Reader, remote string, mode fs.FileMode, mtime time.Time) (n int64, err error) {
	err = d.withSync(ctx, func(y *Sync) error { n, err = y.Push(r, remote, mode, mtime); return err })
	return n, err
}

// PushFile copies a local file to the remote path, keeping its permissions and mtime.
func (d *Device) PushFile(ctx context.Context, local, remote string) (int64, error) {
	f, err := safeopen.Open(local)
	if err != nil {
		return 0, fmt.Errorf("pushing %s to %s: %w", local, d.Serial(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("pushing %s to %s: %w", local, d.Serial(), err)
	}
	return d.Push(ctx, f, remote, st.Mode(), st.ModTime())
}
