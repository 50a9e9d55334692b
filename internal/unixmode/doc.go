// Package unixmode converts between the Unix file mode (st_mode; the i_mode that ext4 and EROFS
// inodes store, and the mode the adb sync protocol carries: the file type in the top four bits,
// then setuid, setgid, sticky and the nine permission bits) and io/fs FileMode, so that the file
// system readers and the adb client report modes the same way.
//
// Terms: the file type is mode & IFMT (IFREG, IFDIR, IFLNK, IFCHR, IFBLK, IFIFO, IFSOCK), as in
// <sys/stat.h>; the permission bits are mode & 0o7777.
package unixmode
