package imagepatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/provkit/provkit/firmware/ext4"
)

// ext4Op is one directory or file the ext4 editor adds, or a file it replaces.
type ext4Op struct {
	rel     string
	dir     bool
	meta    ext4.Meta
	add     addition
	replace bool   // the regular file is there: its contents are replaced
	freed   uint64 // i_blocks (512-byte units) of the file replaced
}

// ext4Plan is what the ext4 editor does to one partition, and the room it needs. The room is
// counted high: a file takes its data blocks, one extent leaf block, and one block (and its
// extent leaf) for its parent directory; a directory takes its block and the same for its
// parent; either takes one more for an external xattr block when its xattrs do not fit in the
// inode; a replaced file gives back the blocks it held (its xattr block among them).
type ext4Plan struct {
	ops        []ext4Op
	needBlocks uint64 // blocks the ops may take
	freed      uint64 // blocks the replaced files give back
	needInodes uint64
	why        string // the growth planned from the superblock's counts, as added to Why
}

// The margin a grown ext4 file system gets past what the patch needs: 1% of its size, then its
// size rounded up to a whole MiB (so a later patch of the same size fits without growing).
const (
	ext4GrowPercent = 1
	ext4GrowRound   = 1 << 20
)

// ext4GrowTarget returns the block count of a file system of blocks blocks (bs bytes each, free
// of them free) grown to hold need more: the shortfall, plus the margin.
func ext4GrowTarget(blocks, bs, free, need uint64) uint64 {
	short := need - min(need, free)
	size := (blocks+short)*bs + blocks*bs*ext4GrowPercent/100
	size = (size + ext4GrowRound - 1) / ext4GrowRound * ext4GrowRound
	return max(size/bs, blocks+1)
}

// replaceable says why a file that exists cannot have its contents replaced, or nil.
func replaceable(fi fs.FileInfo) error {
	n, _ := fi.Sys().(*ext4.Inode)
	switch {
	case fi.IsDir():
		return fmt.Errorf("%w: it is a directory", ext4.ErrNotReplaceable)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: it is a symlink", ext4.ErrNotReplaceable)
	case !fi.Mode().IsRegular() || n == nil:
		return fmt.Errorf("%w: its mode is %v", ext4.ErrNotReplaceable, fi.Mode())
	case n.Links() > 1:
		return fmt.Errorf("%w: it has %d hard links, and replacing it would change the other names too", ext4.ErrNotReplaceable, n.Links())
	}
	return nil
}

// newExt4Plan counts the room ops need and, when the superblock says there is not that much
// free, adds the growth it expects to pr.Why (writeExt4 corrects it with the descriptors'
// counts).
func newExt4Plan(xfs *ext4.FS, ops []ext4Op, pr *Partition) *ext4Plan {
	sb := xfs.Superblock()
	bs := uint64(sb.BlockSize())
	pl := &ext4Plan{ops: ops}
	for _, op := range ops {
		// an inode whose xattrs do not fit in it (128-byte inodes, or a label and a capability)
		// takes an external xattr block too
		pl.needBlocks += xfs.XattrBlocks(op.meta.Xattrs)
		switch {
		case op.dir:
			pl.needBlocks += 3
			pl.needInodes++
		case op.replace:
			pl.needBlocks += (uint64(op.add.size)+bs-1)/bs + 1
			pl.freed += op.freed * 512 / bs
		default:
			pl.needBlocks += (uint64(op.add.size)+bs-1)/bs + 3
			pl.needInodes++
		}
	}
	if free := sb.FreeBlocks + pl.freed; free < pl.needBlocks || uint64(sb.FreeInodes) < pl.needInodes {
		to := ext4GrowTarget(sb.BlocksCount, bs, free, pl.needBlocks)
		pl.why = grownWhy(sb.BlocksCount*bs, to*bs)
		pr.Why += pl.why
	}
	return pl
}

func grownWhy(from, to uint64) string {
	return fmt.Sprintf("; file system grown from %d to %d bytes", from, to)
}

// growExt4 grows the file system ed edits when the plan needs more blocks or inodes than it has
// free: first to ext4GrowTarget, then a group at a time while still short (Grow leaves out a last
// group too small to be useful, and inodes come only with new groups). It returns the new size
// of the file system (fsSize when it does not grow).
func growExt4(ctx context.Context, ed *ext4.Editor, pl *ext4Plan, fsSize int64, pr *Partition) (int64, error) {
	sb := ed.FS().Superblock()
	bs := uint64(sb.BlockSize())
	from := sb.BlocksCount
	for try := 0; ; try++ {
		fb, fi := ed.Free()
		if fb+pl.freed >= pl.needBlocks && fi >= pl.needInodes {
			break
		}
		if try == 8 {
			return 0, fmt.Errorf("%w: %d blocks and %d inodes free after growing, %d and %d needed", ext4.ErrNoSpace, fb+pl.freed, fi, pl.needBlocks, pl.needInodes)
		}
		cur := ed.FS().Superblock().BlocksCount
		target := cur + uint64(sb.BlocksPerGroup)
		if try == 0 {
			target = ext4GrowTarget(cur, bs, fb+pl.freed, pl.needBlocks)
		}
		if err := ed.Grow(ctx, target); err != nil {
			if errors.Is(err, errors.ErrUnsupported) {
				return 0, fmt.Errorf("%w (the file system needs %d more blocks than are free: make the image larger first)", err, pl.needBlocks-min(pl.needBlocks, fb+pl.freed))
			}
			return 0, err
		}
	}
	to := ed.FS().Superblock().BlocksCount
	why := ""
	if to != from {
		why = grownWhy(from*bs, to*bs)
	}
	switch {
	case pl.why != "":
		pr.Why = strings.Replace(pr.Why, pl.why, why, 1)
	default:
		pr.Why += why
	}
	return max(fsSize, int64(to*bs)), nil
}
