// Package fsconfig reads Android's fs_config files and answers what mode, owner and capabilities
// the build gives a path, so that files added to built firmware get what the OEM's build would
// have given them.
//
// The files are /system/etc/fs_config_dirs and fs_config_files (and the same under /vendor, /oem,
// /odm, /product and /system_ext), generated at build time from the device's config.fs. Each is a
// sequence of little-endian records: a 16-bit record length, 16-bit mode, uid and gid, a 64-bit
// capability mask, then a NUL-terminated path prefix, padded to the record length. Paths are
// relative to the root of the device ("product/app/Foo/Foo.apk").
//
// Matching follows libcutils' fs_config: the files are consulted in the order system, vendor,
// oem, odm, product, system_ext, each from its first record, and the first record that matches
// wins; when none does, AOSP's built-in defaults apply (for the paths image patch writes:
// directories 0755, files 0644, root:root). A directory record matches a path that starts with
// its prefix; a file record matches its exact path, or, when it contains '*', a path the pattern
// matches ('*' spanning any characters, '/' included).
package fsconfig
