package ls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"io/fs"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/internal/unixmode"
)

// Options holds what "image ls" needs.
type Options struct {
	IO        *iostreams.IOStreams
	Image     string
	Path      string
	JSON      bool
	Partition string
	Slot      string
}

// NewCmdLs returns the command. runF replaces lsRun in tests.
func NewCmdLs(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "ls <image> [<path>] [--json]",
		Short: "List the partitions of a firmware image, or a directory inside it",
		Long: `List a firmware image's partitions, or the entries of a directory inside one, read in place
(no mount, no root, nothing expanded to disk).

<path> is a device path, /system/app or /product/etc/permissions, placed as the device mounts the
partitions (system-as-root images included), or partition:/path for a partition's own file
system (system:/system/build.prop). Without <path>, the partitions are listed.

Each entry is printed as mode, owner uid, group gid, size, name (and link target); with --json,
stdout is one document: {"image", "path", "partition", "entries": [{name, path, type, mode,
size, uid, gid, ino, selinux, target}]} or, without <path>, {"image", "partitions": [...]}.

Example:
  provkit image ls super.img
  provkit image ls system.img /system/priv-app
  provkit image ls --json factory.zip product:/etc/permissions` +
			cmdutil.ExitStatus(
				"0    listed",
				"1    error: unreadable or corrupt image, no such path",
				"2    usage: bad flags or arguments"),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return cmdutil.FlagErrorf("%s takes <image> [<path>], got %d arguments; see '%s --help'", cmd.CommandPath(), len(args), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Image = args[0]
			if len(args) == 2 {
				opts.Path = args[1]
			}
			if opts.Slot != "" && opts.Slot != "a" && opts.Slot != "b" {
				return cmdutil.FlagErrorf("--slot %q: want a or b", opts.Slot)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return image.Explain(lsRun(cmd.Context(), opts))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document")
	f.StringVar(&opts.Partition, "partition", "", "partition `<name>` of a single partition image (default: from its file name)")
	f.StringVar(&opts.Slot, "slot", "", "A/B slot `{a|b}` (default: the slot whose partitions hold data)")
	return cmd
}

// Entry is one listed file.
type Entry struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Type    string `json:"type"` // file, dir, symlink, fifo, socket, char-device, block-device
	Mode    string `json:"mode"` // permission bits and setuid/setgid/sticky, octal (like 4755)
	Size    int64  `json:"size"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Ino     uint64 `json:"ino,omitempty"`
	SELinux string `json:"selinux,omitempty"`
	Target  string `json:"target,omitempty"`
}

// Listing is the JSON document.
type Listing struct {
	Image      string             `json:"image"`
	Path       string             `json:"path,omitempty"`
	Partition  string             `json:"partition,omitempty"`
	Entries    []Entry            `json:"entries,omitempty"`
	Partitions []*image.Partition `json:"partitions,omitempty"`
}

type owner interface {
	UID() uint32
	GID() uint32
	Ino() uint64
}

func lsRun(ctx context.Context, opts *Options) error {
	im, err := image.Open(ctx, opts.Image, &image.Options{Partition: opts.Partition, Slot: opts.Slot})
	if err != nil {
		return err
	}
	defer im.Close()
	if opts.Path == "" {
		return listPartitions(opts, im)
	}
	part, fsys, inner, err := im.Resolve(opts.Path)
	if err != nil {
		return err
	}
	fi, err := fs.Stat(fsys, inner)
	if err != nil {
		// A dangling symbolic link is still an entry: list the link itself, as ls does.
		if l, ok := fsys.(fs.ReadLinkFS); ok {
			if lfi, lerr := l.Lstat(inner); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
				fi, err = lfi, nil
			}
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "stat nope" names the path inside the partition, not the one asked for
		}
		return fmt.Errorf("listing %s in %s: %w", opts.Path, opts.Image, err)
	}
	var entries []Entry
	if fi.IsDir() {
		des, err := fs.ReadDir(fsys, inner)
		if err != nil {
			return fmt.Errorf("listing %s in %s: %w", opts.Path, opts.Image, err)
		}
		for _, de := range des {
			p := path.Join(inner, de.Name())
			e, err := entry(fsys, p, de.Name())
			if err != nil {
				return fmt.Errorf("listing %s in %s: %w", path.Join(opts.Path, de.Name()), opts.Image, err)
			}
			entries = append(entries, e)
		}
	} else {
		e, err := entry(fsys, inner, path.Base(inner))
		if err != nil {
			return fmt.Errorf("listing %s in %s: %w", opts.Path, opts.Image, err)
		}
		entries = append(entries, e)
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, Listing{Image: opts.Image, Path: opts.Path, Partition: part, Entries: entries})
	}
	// ls -ln columns: mode, uid, gid and size right-aligned, then the name.
	wu, wg, ws := 1, 1, 1
	for _, e := range entries {
		wu = max(wu, len(fmt.Sprint(e.UID)))
		wg = max(wg, len(fmt.Sprint(e.GID)))
		ws = max(ws, len(fmt.Sprint(e.Size)))
	}
	for _, e := range entries {
		// A file name in an image may hold anything but '/' and NUL: made visible.
		name := termtext.Visible(e.Name)
		if e.Target != "" {
			name += " -> " + termtext.Visible(e.Target)
		}
		if _, err := fmt.Fprintf(opts.IO.Out, "%s %*d %*d %*d %s\n", modeString(e), wu, e.UID, wg, e.GID, ws, e.Size, name); err != nil {
			return err
		}
	}
	return nil
}

// entry describes one file without following a final symbolic link.
func entry(fsys fs.FS, p, name string) (Entry, error) {
	var fi fs.FileInfo
	var err error
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		fi, err = l.Lstat(p)
	} else {
		fi, err = fs.Stat(fsys, p)
	}
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Name: name, Path: p, Size: fi.Size(), Type: typeName(fi.Mode())}
	e.Mode = fmt.Sprintf("%04o", unixmode.Unix(fi.Mode())&0o7777)
	if o, ok := fi.Sys().(owner); ok {
		e.UID, e.GID, e.Ino = o.UID(), o.GID(), o.Ino()
	}
	if l, ok := fi.Sys().(interface{ SELinuxLabel() string }); ok {
		e.SELinux = l.SELinuxLabel()
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if t, err := fs.ReadLink(fsys, p); err == nil {
			e.Target = t
		}
	}
	return e, nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "char-device"
	case m&fs.ModeDevice != 0:
		return "block-device"
	}
	return "file"
}

// modeString renders a mode as ls -l does.
func modeString(e Entry) string {
	t := map[string]byte{"dir": 'd', "symlink": 'l', "fifo": 'p', "socket": 's', "char-device": 'c', "block-device": 'b', "file": '-'}[e.Type]
	var bits uint32
	fmt.Sscanf(e.Mode, "%o", &bits)
	b := []byte{t}
	rwx := "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if bits&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	set := func(i int, on bool, lower, upper byte) {
		if !on {
			return
		}
		if b[i] == '-' {
			b[i] = upper
		} else {
			b[i] = lower
		}
	}
	set(3, bits&0o4000 != 0, 's', 'S')
	set(6, bits&0o2000 != 0, 's', 'S')
	set(9, bits&0o1000 != 0, 't', 'T')
	return string(b)
}

func listPartitions(opts *Options, im *image.Image) error {
	if opts.JSON {
		return writeJSON(opts.IO.Out, Listing{Image: opts.Image, Partitions: im.Partitions})
	}
	tw := tabwriter.NewWriter(termtext.NewWriter(opts.IO.Out), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSLOT\tFORMAT\tSIZE\tSOURCE")
	for _, p := range im.Partitions {
		name := p.Name
		if !p.Active {
			name += " (inactive)"
		}
		format := string(p.Format)
		if p.Pending {
			format = "(not read)"
		}
		slot := p.Slot
		if slot == "" {
			slot = "-"
		}
		src := p.Source
		if p.Err != nil && !errors.Is(p.Err, context.Canceled) {
			src += "  (" + strings.TrimPrefix(p.Err.Error(), "reading "+p.Source+": ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, slot, format, p.Size, src)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
