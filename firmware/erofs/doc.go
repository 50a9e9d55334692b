// Package erofs reads EROFS (Enhanced Read-Only File System) images, the filesystem Android uses for
// its system, product, vendor and system_ext partitions, in pure Go through an io.ReaderAt. It never
// loads an image whole: opening an APK inside a 2 GiB compressed image reads the superblock, the
// inodes and directory blocks on its path, and then only the compressed clusters that hold the bytes
// asked for.
//
// Write (write.go) makes a new image from a tree of Nodes (Tree reads one from an existing image,
// compressed or not): extended inodes keep every entry's mode, uid/gid, mtime and xattrs, hard
// links stay links. A file Tree found compressed keeps its compressed data (zcopy.go): its
// pclusters are copied block for block, never recompressed, and its indexes rewritten as full
// indexes pointing at the new blocks; the superblock takes the source's compression features.
// A file Tree found chunk-based (mkfs.erofs --chunksize) stays chunk-based (chunkcopy.go): each
// distinct source block range its chunks use is copied once, so chunks shared between files are
// still shared, and holes stay holes.
// Other data is stored uncompressed in whole blocks, its last partial block inline after the
// inode (FLAT_INLINE) when it fits. Files that cannot be copied compressed are written
// decompressed, and WriteWithStats lists them.
//
// The reader is read-only and checks what it reads: bad magic, a wrong superblock checksum, unknown
// incompatible features, inode numbers past the end of the image, directory loops, cluster indexes
// or extents past the end, absurd sizes and decompressed-size mismatches all end in an error that
// names the structure (inode nid, block, byte offset) and wraps ErrCorrupt or ErrUnsupported.
// Memory is bounded by the structures read: the decompressed-cluster cache has a byte budget and a
// single extent is never larger than MaxExtentSize.
//
// # Terms
//
//   - block: the unit of the image, 1<<blkszbits bytes (4096 for every image Android builds). Block
//     addresses count from the start of the image.
//   - superblock: 128 bytes (plus optional extension slots) at byte 1024 that describe the image:
//     magic 0xE0F5E1E2, block size, feature flags, root directory, where inodes and shared xattrs
//     start, build time.
//   - feature flags: compat features (superblock checksum, per-inode mtime) can be ignored by a reader
//     that does not know them; incompat features (0padding, big pcluster, chunked files, device
//     table, ztailpacking, ...) change the layout, so an image using one this package does not know
//     is refused with ErrUnsupported naming it.
//   - nid: the inode number, the position of the inode in 32-byte slots after the metadata start
//     block (meta_blkaddr). Inodes are compact (32 bytes: 32-bit size, 16-bit uid/gid, the image
//     build time as mtime) or extended (64 bytes: 64-bit size, 32-bit uid/gid, own mtime).
//   - data layout: how an inode's bytes are stored. FLAT_PLAIN: contiguous blocks from raw_blkaddr.
//     FLAT_INLINE: like FLAT_PLAIN, but the last partial block ("tail") sits right after the inode
//     (tail packing). CHUNK_BASED: a table of per-chunk block addresses (a plain block map, or chunk
//     indexes that also name a device). COMPRESSED_FULL and COMPRESSED_COMPACT: compressed, with one
//     8-byte index per logical cluster, or the compacted 2-byte/4-byte packs of those indexes.
//   - lcluster (logical cluster): a fixed slice (one block) of a compressed file's uncompressed bytes.
//     Each has an index entry: HEAD (an extent starts in it, at clusterofs), NONHEAD (continues the
//     previous extent; delta[0] points back to its head, delta[1] forward to the next head) or PLAIN
//     (a head whose data is stored uncompressed).
//   - pcluster (physical cluster): the compressed bytes of one extent, one block or, with big
//     pcluster, several (the count is stored in the first NONHEAD index as CBLKCNT).
//   - extent: the run of uncompressed bytes that one pcluster decodes to.
//   - 0padding: the compressed stream is right-aligned in its pcluster, preceded by zero bytes, so
//     a decoder knows its exact length.
//   - ztailpacking: the last pcluster of a compressed file is stored inline after its index, inside
//     the metadata block, instead of taking a whole block.
//   - interlaced/shifted: two ways of storing an uncompressed (PLAIN) pcluster in a compressed file.
//   - xattr: extended attribute. Inline xattrs follow the inode; shared xattrs live in a table from
//     xattr_blkaddr and are referenced by 4-byte ids. A name is a prefix index (user., trusted.,
//     security., system.posix_acl_*) plus a suffix; Android stores SELinux labels as security.selinux.
//   - device table: extra devices (blob files) holding chunk data, referenced by chunk indexes.
//
// Open returns an FS that implements io/fs.FS, fs.ReadDirFS, fs.StatFS, fs.ReadFileFS and
// fs.ReadLinkFS. A file's FileInfo.Sys() is an *Inode carrying uid, gid, inode number, device number
// and xattrs. Files opened from it are *File values: io.ReaderAt, io.Seeker and io.Reader.
package erofs
