// Package testimage builds firmware images for tests with the real reference tools: ext4 with
// mke2fs -d (SELinux labels set with debugfs), EROFS with mkfs.erofs, sparse images with img2simg,
// super images with lpwrite (Debian has no lpmake), and factory zips. Tests skip when a tool is
// missing and fail in strict mode (PROVKIT_REQUIRE_TOOLS=1).
package testimage
