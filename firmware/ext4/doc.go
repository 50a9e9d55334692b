// Package ext4 reads ext2/ext3/ext4 file systems as Android builds them (mke2fs + e2fsdroid),
// through an io.ReaderAt, and presents them as an io/fs file system. Its Editor adds directories
// and files to an ext4 image in place (see Edit).
//
// Terms (see the kernel's Documentation/filesystems/ext4/):
//
//   - Block: the file system's unit of allocation, 1 KiB to 64 KiB. Block group: a run of blocks
//     with its own block bitmap, inode bitmap and inode table, described by a group descriptor.
//   - Inode: the record of one file (mode, owner, size, times, flags) and of where its data lives.
//     Its i_block area (60 bytes) holds either an extent tree root, a legacy block map (12 direct,
//     one single, one double and one triple indirect pointer), a fast symlink's target, or inline
//     data.
//   - Extent: a run of logical file blocks stored in a run of physical blocks. Extent trees have
//     index nodes above leaves; an uninitialized (unwritten) extent reads as zeros; logical blocks
//     that no extent covers are holes and read as zeros too.
//   - Directory: a file of directory entries (inode, record length, name, type). An htree (dx)
//     directory adds a hash index in its first block and in interior blocks that linear readers
//     see as empty entries. An inline directory keeps its entries in the inode itself.
//   - Extended attributes (xattrs): name/value pairs stored after the inode's extra fields and/or
//     in one external block; Android stores the SELinux label as "security.selinux".
//   - metadata_csum: CRC32C checksums over the superblock, group descriptors, inodes, extent tree
//     blocks, directory blocks and xattr blocks. provkit verifies each one it reads and reports a
//     mismatch as an error (ErrChecksum).
//   - shared_blocks: an Android (e2fsdroid) read-only feature meaning several files may share
//     physical blocks (deduplication); the Editor adds to such file systems but refuses to
//     replace (free) files in them.
//   - Resize inode (inode 7, resize_inode): a block-mapped inode whose indirect blocks are the
//     reserved group descriptor blocks after the descriptor table, each listing its copies in the
//     groups that hold superblock backups.
//   - Bitmaps: one block bitmap and one inode bitmap per group, a set bit meaning "in use". With
//     uninit_bg or metadata_csum a group may be flagged BLOCK_UNINIT or INODE_UNINIT (its bitmap was
//     never written and is implied) and may leave the end of its inode table unused
//     (bg_itable_unused).
//
// The Editor (Edit) allocates from the bitmaps (one contiguous run when one is long enough),
// writes file data, inodes with the SELinux label and other xattrs in the inode's extra space and
// what does not fit there (all of them with 128-byte inodes) in an external xattr block of the
// inode's own (sorted entries, entry and block hashes, metadata_csum checksum, i_file_acl,
// i_blocks), directory entries in linear directories (appending blocks, and an extent leaf block
// when the inode's four extents are used), then the bitmaps, group descriptors and superblock
// counters with every metadata_csum or gdt_csum checksum. It refuses, before changing anything,
// what it cannot keep consistent: htree, inline or encrypted parent directories, xattrs that do
// not fit in the inode and one block, quota, bigalloc, a journal needing recovery, and files
// larger than the free space (ErrNoSpace). Replace frees a regular file's data and extent tree
// blocks (and its xattr block when no other inode shares it) and writes new contents into the
// same inode; Grow enlarges the file system offline as resize2fs does (the
// last group filled, new groups added with their backups and the resize inode's list). It never
// deletes files.
//
// Open reads the superblock and group descriptors. Everything else is read on demand: looking up
// a path reads the directories on the way, reading a file reads only the extent tree nodes and data
// blocks that the requested bytes need. Every structure read is bounds-checked; a hostile image
// (loops, extents past the end or into metadata, absurd counts, truncation, bad checksums) gets an
// error wrapping ErrCorrupt that names the structure, inode and byte offset, never a panic.
//
// FS implements fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS. Files opened
// from it implement io.ReaderAt and io.Seeker. A FileInfo's Sys() is an *Inode, which carries the
// owner, inode number and extended attributes.
package ext4
