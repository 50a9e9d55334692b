// Package unixmode converts the Unix file mode that ext4 and EROFS inodes store (i_mode: the file
// type in the top four bits, then setuid, setgid, sticky and the nine permission bits) to an
// io/fs FileMode, so that both file system readers report modes the same way.
//
// Terms: the file type is mode & IFMT (IFREG, IFDIR, IFLNK, IFCHR, IFBLK, IFIFO, IFSOCK), as in
// <sys/stat.h>; the permission bits are mode & 0o7777.
package unixmode
