// Package safeopen opens a file that provkit is going to read only when it is what the caller
// expects: a regular file, or (where a partition image is meant) a block device. A FIFO named
// system.img, a character device such as /dev/zero, a socket or a directory is refused with an
// error that says what the path is — before anything blocks. The open itself uses O_NONBLOCK, so
// even a FIFO swapped in between a check and the open cannot hang provkit in open(2), where no
// signal would reach it.
package safeopen
