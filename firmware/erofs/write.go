package erofs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/provkit/provkit/internal/unixmode"
)

// Writing: a new uncompressed EROFS image from a tree of Nodes. Every inode is extended (64 bytes,
// so each keeps its own mtime, 32-bit uid/gid and nlink), xattrs are inline, data is FLAT_PLAIN
// (whole blocks), directories are sorted dirent blocks as the kernel's binary search wants them.

// Node is one entry of a tree to write.
type Node struct {
	Path   string // slash-separated, relative to the root; "." is the root
	Mode   uint32 // unix mode with its type bits (unixmode.IFREG|0o644, ...)
	UID    uint32
	GID    uint32
	Mtime  time.Time
	Xattrs map[string][]byte
	Size   int64       // regular files: the number of bytes Data holds
	Data   io.ReaderAt // regular files
	Link   string      // symlinks: the target
	Rdev   uint32      // character and block devices, as the inode stores it
	// Ino groups hard links: nodes with the same non-zero Ino share one inode.
	Ino uint64
	// Compressed, set by Tree for a file stored compressed in its source image, lets Write copy
	// the compressed data as it is. It applies only while Data is the reader Tree set, so a
	// caller that replaces Data need not clear it. Nodes built by hand leave it nil.
	Compressed *Compressed
	// Chunked, set by Tree for a file stored chunk-based in its source image, lets Write keep it
	// chunk-based, its chunks copied once however many files share them. Like Compressed, it
	// applies only while Data is the reader Tree set.
	Chunked *Chunked
}

// WriteOptions are the image-wide settings.
type WriteOptions struct {
	UUID       [16]byte
	VolumeName string
	BuildTime  time.Time
}

// Tree returns every entry of f as Nodes (data read lazily from f), root first, parents before
// children, and the image-wide settings to write it again with.
func Tree(ctx context.Context, f *FS) ([]Node, WriteOptions, error) {
	sb := f.Superblock()
	opts := WriteOptions{UUID: sb.UUID, VolumeName: sb.VolumeName, BuildTime: time.Unix(int64(sb.BuildTime), int64(sb.BuildTimeNsec%1e9))}
	img, err := f.comprImage()
	if err != nil {
		return nil, opts, fmt.Errorf("reading EROFS tree: %w", err)
	}
	chunkSrc := &chunkSource{r: f.r, size: f.size}
	type regular struct {
		data io.ReaderAt
		c    *Compressed
		ch   *Chunked
	}
	seen := map[uint64]regular{} // hard links: one reader and one description per inode
	var out []Node
	err = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := f.resolve("lstat", p, false)
		if err != nil {
			return err
		}
		n := Node{Path: p, Mode: uint32(in.mode), UID: in.uid, GID: in.gid, Mtime: in.mtime, Xattrs: in.Xattrs(), Ino: in.nid}
		switch in.mode & unixmode.IFMT {
		case unixmode.IFREG:
			if s, ok := seen[in.nid]; ok {
				n.Size, n.Data, n.Compressed, n.Chunked = in.size, s.data, s.c, s.ch
				break
			}
			r, err := f.newDataReader(in)
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			n.Size, n.Data = in.size, r
			if r.z != nil && in.size > 0 {
				if n.Compressed, err = f.compressedSource(ctx, in, r.z, r, img); err != nil {
					return fmt.Errorf("reading %s: %w", p, err)
				}
			}
			if in.layout == LayoutChunkBased && in.size > 0 {
				if n.Chunked, err = f.chunkedSource(ctx, in, r, chunkSrc); err != nil {
					return fmt.Errorf("reading %s: %w", p, err)
				}
			}
			if in.nlink > 1 {
				seen[in.nid] = regular{r, n.Compressed, n.Chunked}
			}
		case unixmode.IFLNK:
			if n.Link, err = f.readLink(in); err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
		case unixmode.IFCHR, unixmode.IFBLK:
			n.Rdev = in.u
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, opts, fmt.Errorf("reading EROFS tree: %w", err)
	}
	return out, opts, nil
}

type wnode struct {
	*Node
	children []*wnode // directories: sorted by name
	parent   *wnode
	owner    *wnode // hard links: the node whose inode this one shares (itself when first)
	nlink    uint32
	nid      uint64
	ibody    []byte // inline xattr body
	blkaddr  uint32
	dataSize int64
	dirData  []byte
	z        *Compressed // regular files whose compressed data is copied from their source
	ch       *Chunked    // regular files kept chunk-based, their chunks copied from their source
	tail     int64       // FLAT_INLINE: bytes stored after the inode instead of in a block
}

// readData reads len(p) bytes of n's data at off.
func (n *wnode) readData(p []byte, off int64) error {
	switch n.Mode & unixmode.IFMT {
	case unixmode.IFDIR:
		copy(p, n.dirData[off:])
	case unixmode.IFLNK:
		copy(p, n.Link[off:])
	default:
		k, err := n.Data.ReadAt(p, off)
		if k < len(p) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading at %d: %w", off, err)
		}
	}
	return nil
}

const blkSize = 4096

func ftypeOf(mode uint32) uint8 {
	switch mode & unixmode.IFMT {
	case unixmode.IFREG:
		return ftReg
	case unixmode.IFDIR:
		return ftDir
	case unixmode.IFCHR:
		return ftChr
	case unixmode.IFBLK:
		return ftBlk
	case unixmode.IFIFO:
		return ftFifo
	case unixmode.IFSOCK:
		return ftSock
	case unixmode.IFLNK:
		return ftSymlink
	}
	return ftUnknown
}

var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"system.posix_acl_access", xattrIndexPosixACLAccess},
	{"system.posix_acl_default", xattrIndexPosixACLDefault},
	{"security.", xattrIndexSecurity},
	{"trusted.", xattrIndexTrusted},
	{"user.", xattrIndexUser},
	{"lustre.", xattrIndexLustre},
}

// encodeXattrs builds an inline xattr body (header, entries padded to 4 bytes), names sorted.
func encodeXattrs(x map[string][]byte) ([]byte, error) {
	if len(x) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(x))
	for k := range x {
		names = append(names, k)
	}
	sort.Strings(names)
	b := make([]byte, xattrIbodyHeaderSize)
	for _, name := range names {
		var idx uint8
		suffix := ""
		for _, p := range xattrPrefixes {
			if strings.HasPrefix(name, p.prefix) {
				idx, suffix = p.index, name[len(p.prefix):]
				break
			}
		}
		if idx == 0 {
			return nil, fmt.Errorf("xattr %q has no prefix EROFS can store (security., user., trusted., system.posix_acl_*)", name)
		}
		v := x[name]
		if len(suffix) > 255 || len(v) > 65535 {
			return nil, fmt.Errorf("xattr %q: name or value too long", name)
		}
		e := []byte{byte(len(suffix)), idx, 0, 0}
		binary.LittleEndian.PutUint16(e[2:], uint16(len(v)))
		e = append(append(e, suffix...), v...)
		for len(e)%4 != 0 {
			e = append(e, 0)
		}
		b = append(b, e...)
	}
	if len(b) > 65535*4 {
		return nil, errors.New("xattrs too large for an inline body")
	}
	return b, nil
}

// buildDir encodes a directory's dirent blocks: "." and ".." and the children, sorted by name,
// packed so that no dirent or name crosses a block.
func buildDir(n *wnode) []byte {
	type ent struct {
		name string
		nid  uint64
		ft   uint8
	}
	parent := n.parent
	if parent == nil {
		parent = n
	}
	ents := []ent{{".", n.nid, ftDir}, {"..", parent.nid, ftDir}}
	for _, c := range n.children {
		ents = append(ents, ent{path.Base(c.Path), c.owner.nid, ftypeOf(c.Mode)})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	var out []byte
	for i := 0; i < len(ents); {
		used, j := 0, i
		for j < len(ents) && used+direntSize+len(ents[j].name) <= blkSize {
			used += direntSize + len(ents[j].name)
			j++
		}
		blk := make([]byte, 0, blkSize)
		nameOff := direntSize * (j - i)
		for _, e := range ents[i:j] {
			d := make([]byte, direntSize)
			binary.LittleEndian.PutUint64(d, e.nid)
			binary.LittleEndian.PutUint16(d[8:], uint16(nameOff))
			d[10] = e.ft
			blk = append(blk, d...)
			nameOff += len(e.name)
		}
		for _, e := range ents[i:j] {
			blk = append(blk, e.name...)
		}
		i = j
		if i < len(ents) {
			blk = append(blk, make([]byte, blkSize-len(blk))...)
		}
		out = append(out, blk...)
	}
	return out
}

// Write writes nodes as a new EROFS image to w and returns its size in bytes (a multiple of 4096).
// Parents must come before their children; the root "." must be present. Files Tree found
// compressed keep their compressed data (see Compressed); every other file is stored uncompressed.
func Write(ctx context.Context, w io.WriterAt, nodes []Node, opts WriteOptions) (int64, error) {
	st, err := WriteWithStats(ctx, w, nodes, opts)
	return st.Size, err
}

// WriteStats says what Write did with the files.
type WriteStats struct {
	Size int64 // bytes of the image, a multiple of 4096
	// Copied counts the files (inodes) whose compressed data was copied from their source image.
	Copied int
	// Chunked counts the files (inodes) kept chunk-based, and ChunkBlocks the distinct data
	// blocks their chunks use in the new image (shared chunks counted once).
	Chunked     int
	ChunkBlocks int64
	// Fallbacks are the files compressed or chunk-based in their source image that were written
	// FLAT_PLAIN, and why. Files whose Data the caller replaced are not among them.
	Fallbacks []Fallback
}

// Fallback is a compressed or chunk-based file written FLAT_PLAIN.
type Fallback struct {
	Path   string
	Reason string
}

// WriteWithStats is Write returning what it did with compressed files.
func WriteWithStats(ctx context.Context, w io.WriterAt, nodes []Node, opts WriteOptions) (WriteStats, error) {
	var st WriteStats
	size, err := write(ctx, w, nodes, opts, &st)
	st.Size = size
	return st, err
}

func write(ctx context.Context, w io.WriterAt, nodes []Node, opts WriteOptions, st *WriteStats) (int64, error) {
	byPath := make(map[string]*wnode, len(nodes))
	byIno := map[uint64]*wnode{}
	var root *wnode
	var order []*wnode // inodes in nid order: breadth first from the root
	for i := range nodes {
		n := &wnode{Node: &nodes[i]}
		p := n.Path
		if p != "." && (p == "" || !fs.ValidPath(p)) {
			return 0, fmt.Errorf("writing EROFS: invalid path %q", p)
		}
		if _, dup := byPath[p]; dup {
			return 0, fmt.Errorf("writing EROFS: %s appears twice", p)
		}
		byPath[p] = n
		if p == "." {
			if n.Mode&unixmode.IFMT != unixmode.IFDIR {
				return 0, errors.New("writing EROFS: the root is not a directory")
			}
			root = n
		} else {
			parent := byPath[path.Dir(p)]
			if parent == nil || parent.Mode&unixmode.IFMT != unixmode.IFDIR {
				return 0, fmt.Errorf("writing EROFS: %s: parent directory missing or listed after it", p)
			}
			n.parent = parent
			parent.children = append(parent.children, n)
		}
		n.owner = n
		if n.Ino != 0 && n.Mode&unixmode.IFMT != unixmode.IFDIR {
			if o := byIno[n.Ino]; o != nil {
				n.owner = o
			} else {
				byIno[n.Ino] = n
			}
		}
		n.owner.nlink++
		if n.Mode&unixmode.IFMT == unixmode.IFDIR {
			n.nlink++ // "."
			if n.parent != nil {
				n.parent.nlink++ // ".."
			}
		}
	}
	if root == nil {
		return 0, errors.New("writing EROFS: no root directory")
	}
	root.nlink++ // the root's ".." is itself
	// breadth-first order, children by name
	queue := []*wnode{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n.owner == n {
			order = append(order, n)
		}
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].Path < n.children[j].Path })
		queue = append(queue, n.children...)
	}
	// compressed files copied as they are: all from images with the same compression settings
	var img *comprImage
	for _, n := range order {
		c := n.Compressed
		if n.Mode&unixmode.IFMT != unixmode.IFREG || c == nil || n.Data != c.data || n.Size != c.size {
			continue
		}
		if why := c.usable(img); why != "" {
			st.Fallbacks = append(st.Fallbacks, Fallback{Path: n.Path, Reason: why})
			continue
		}
		img, n.z = c.img, c
		st.Copied++
	}
	// chunk-based files kept chunk-based: their chunks' source blocks, copied once each
	var chunks chunkPlan
	for _, n := range order {
		c := n.Chunked
		if n.Mode&unixmode.IFMT != unixmode.IFREG || n.z != nil || c == nil || n.Data != c.data || n.Size != c.size {
			continue
		}
		if why := c.usable(); why != "" {
			st.Fallbacks = append(st.Fallbacks, Fallback{Path: n.Path, Reason: why})
			continue
		}
		n.ch = c
		chunks.add(c)
		st.Chunked++
	}
	// data sizes (a directory's size depends only on its names, so it is known before the nids)
	for _, n := range order {
		switch n.Mode & unixmode.IFMT {
		case unixmode.IFDIR:
			n.dataSize = int64(len(buildDir(n)))
		case unixmode.IFREG:
			if n.Size < 0 || (n.Size > 0 && n.Data == nil) {
				return 0, fmt.Errorf("writing EROFS: %s: size %d without data", n.Path, n.Size)
			}
			n.dataSize = n.Size
		case unixmode.IFLNK:
			if n.Link == "" || len(n.Link) > 4095 {
				return 0, fmt.Errorf("writing EROFS: %s: symlink target of %d bytes", n.Path, len(n.Link))
			}
			n.dataSize = int64(len(n.Link))
		}
	}
	// inode slots
	const metaBlk = 1
	var metaSize int64
	for _, n := range order {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var err error
		if n.ibody, err = encodeXattrs(n.Xattrs); err != nil {
			return 0, fmt.Errorf("writing EROFS: %s: %w", n.Path, err)
		}
		end := int64(inodeExtendedSize + len(n.ibody))
		switch {
		case n.ch != nil:
			end = n.ch.metaEnd(len(n.ibody))
		case n.z != nil:
			var tailAt int64
			end, tailAt = n.z.metaLayout(len(n.ibody))
			// The inline tail pcluster must not cross a block: move the inode by slots until it
			// does not (at most a block's worth, as the tail is smaller than a block less 32).
			for k := int64(len(n.z.inline)); k > 0 && (metaSize+tailAt)%blkSize+k > blkSize; {
				metaSize += inodeCompactSize
			}
		case n.dataSize%blkSize != 0:
			// FLAT_INLINE: the last partial block follows the inode when it fits in the rest of
			// the metadata block, or in the next one when skipping there wastes less than the
			// data block it saves.
			tail := n.dataSize % blkSize
			if (metaSize+end)%blkSize+tail > blkSize {
				gap := (blkSize - metaSize%blkSize) % blkSize
				if end+tail > blkSize || gap >= blkSize-tail {
					break
				}
				metaSize += gap
			}
			n.tail = tail
			end += tail
		}
		n.nid = uint64(metaSize / inodeCompactSize)
		metaSize += (end + inodeCompactSize - 1) / inodeCompactSize * inodeCompactSize
	}
	if root.nid != 0 {
		return 0, errors.New("writing EROFS: root inode is not first")
	}
	// data blocks
	next := int64(metaBlk) + (metaSize+blkSize-1)/blkSize
	chunkStart := next
	next, err := chunks.place(next)
	if err != nil {
		return 0, err
	}
	st.ChunkBlocks = next - chunkStart
	for _, n := range order {
		blocks := (n.dataSize - n.tail + blkSize - 1) / blkSize
		switch {
		case n.z != nil:
			blocks = n.z.blocks
		case n.ch != nil:
			blocks = 0 // in the chunk area
		}
		if n.Mode&unixmode.IFMT == unixmode.IFDIR {
			n.dirData = buildDir(n)
		}
		if blocks > 0 {
			if next > 1<<32-1-blocks {
				return 0, errors.New("writing EROFS: image larger than 16 TiB")
			}
			n.blkaddr = uint32(next)
			next += blocks
		}
	}
	total := next * blkSize
	// inodes
	meta := make([]byte, (metaSize+blkSize-1)/blkSize*blkSize)
	le := binary.LittleEndian
	for i, n := range order {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b := meta[n.nid*inodeCompactSize:]
		layout := LayoutFlatPlain
		switch {
		case n.z != nil:
			layout = LayoutCompressedFull
		case n.ch != nil:
			layout = LayoutChunkBased
		case n.tail > 0:
			layout = LayoutFlatInline
		}
		le.PutUint16(b[0:], uint16(1|layout<<inodeFormatLayoutShift))
		if len(n.ibody) > 0 {
			le.PutUint16(b[2:], uint16((len(n.ibody)-xattrIbodyHeaderSize)/4+1))
		}
		le.PutUint16(b[4:], uint16(n.Mode))
		le.PutUint64(b[8:], uint64(n.dataSize))
		switch {
		case n.Mode&unixmode.IFMT == unixmode.IFCHR, n.Mode&unixmode.IFMT == unixmode.IFBLK:
			le.PutUint32(b[16:], n.Rdev)
		case n.z != nil:
			le.PutUint32(b[16:], n.z.u) // compressed_blocks
			copy(b[align(int64(inodeExtendedSize+len(n.ibody)), 8):], n.z.meta(int64(n.blkaddr)))
		case n.ch != nil:
			le.PutUint32(b[16:], n.ch.format())
			copy(b[align(int64(inodeExtendedSize+len(n.ibody)), n.ch.unit()):], chunks.index(n.ch))
		default:
			le.PutUint32(b[16:], n.blkaddr)
		}
		le.PutUint32(b[20:], uint32(i+1))
		le.PutUint32(b[24:], n.UID)
		le.PutUint32(b[28:], n.GID)
		sec, nsec := n.Mtime.Unix(), n.Mtime.Nanosecond()
		if sec < 0 {
			sec, nsec = 0, 0
		}
		le.PutUint64(b[32:], uint64(sec))
		le.PutUint32(b[40:], uint32(nsec))
		le.PutUint32(b[44:], n.nlink)
		copy(b[inodeExtendedSize:], n.ibody)
		if n.tail > 0 {
			tb := b[inodeExtendedSize+len(n.ibody):][:n.tail]
			if err := n.readData(tb, n.dataSize-n.tail); err != nil {
				return 0, fmt.Errorf("writing EROFS data of %s: %w", n.Path, err)
			}
		}
	}
	if _, err := w.WriteAt(meta, metaBlk*blkSize); err != nil {
		return 0, fmt.Errorf("writing EROFS inodes: %w", err)
	}
	// data
	buf := make([]byte, 1<<20)
	if err := chunks.copy(ctx, w, buf); err != nil {
		return 0, err
	}
	for _, n := range order {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if n.z != nil {
			if n.z.blocks > 0 {
				if err := n.z.copyBlocks(ctx, w, int64(n.blkaddr), buf); err != nil {
					return 0, fmt.Errorf("writing EROFS data of %s: %w", n.Path, err)
				}
			}
			continue
		}
		if n.ch != nil {
			continue
		}
		size := n.dataSize - n.tail // the bytes in blocks
		if size == 0 {
			continue
		}
		off := int64(n.blkaddr) * blkSize
		var err error
		switch n.Mode & unixmode.IFMT {
		case unixmode.IFDIR:
			_, err = w.WriteAt(n.dirData[:size], off)
		case unixmode.IFLNK:
			_, err = w.WriteAt([]byte(n.Link)[:size], off)
		case unixmode.IFREG:
			err = copyData(ctx, w, off, n.Data, size, buf)
		}
		if err != nil {
			return 0, fmt.Errorf("writing EROFS data of %s: %w", n.Path, err)
		}
		// zero the tail of the last block so the image is deterministic
		if pad := (blkSize - size%blkSize) % blkSize; pad > 0 {
			if _, err := w.WriteAt(make([]byte, pad), off+size); err != nil {
				return 0, fmt.Errorf("writing EROFS data of %s: %w", n.Path, err)
			}
		}
	}
	// superblock (block 0)
	sb := make([]byte, blkSize)
	s := sb[SuperblockOffset:]
	le.PutUint32(s[0:], Magic)
	s[12] = 12
	le.PutUint16(s[14:], uint16(root.nid))
	le.PutUint64(s[16:], uint64(len(order)))
	bt := opts.BuildTime
	if bt.Unix() > 0 {
		le.PutUint64(s[24:], uint64(bt.Unix()))
		le.PutUint32(s[32:], uint32(bt.Nanosecond()))
	}
	le.PutUint32(s[36:], uint32(next))
	le.PutUint32(s[40:], metaBlk)
	copy(s[48:64], opts.UUID[:])
	var incompat uint32
	if st.Chunked > 0 {
		incompat |= FeatureIncompatChunkedFile
	}
	le.PutUint32(s[80:], incompat)
	if img != nil {
		le.PutUint32(s[80:], incompat|img.incompat)
		copy(s[84:86], img.algField[:])
		copy(s[superblockSize:], img.cfgs)
	}
	if len(opts.VolumeName) > 16 {
		return 0, fmt.Errorf("writing EROFS: volume name %q longer than 16 bytes", opts.VolumeName)
	}
	copy(s[64:80], opts.VolumeName)
	if _, err := w.WriteAt(sb, 0); err != nil {
		return 0, fmt.Errorf("writing EROFS superblock: %w", err)
	}
	return total, nil
}

func copyData(ctx context.Context, w io.WriterAt, off int64, r io.ReaderAt, size int64, buf []byte) error {
	for pos := int64(0); pos < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(buf)), size-pos)
		k, err := r.ReadAt(buf[:n], pos)
		if int64(k) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading at %d: %w", pos, err)
		}
		if _, err := w.WriteAt(buf[:n], off+pos); err != nil {
			return err
		}
		pos += n
	}
	return nil
}
