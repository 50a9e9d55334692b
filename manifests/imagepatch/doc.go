// Package imagepatch makes built firmware compliant with a preinstall policy without rebuilding
// Android: it puts each app of the policy (its verified, pinned APK and the permission XMLs that
// `provkit patch` would have added to the build tree) into the partition the policy names, writes
// that partition's file system anew, recomputes its AVB hashtree and re-signs the vbmeta images
// that describe it, directly or through a chain.
//
// Terms:
//
//   - changed partition: a partition that receives files. Every other partition is copied as is.
//   - device path: where a file appears on the phone, "/<partition>/<path in the partition>"; the
//     partition's etc/selinux/*file_contexts (after the system partition's plat_file_contexts)
//     label it, as libselinux would at build time (firmware/selinux).
//   - AOSP defaults: what fs_config gives files that no device config names: directories 0755,
//     files 0644, owner root:root.
//   - re-signed vbmeta: a vbmeta image rebuilt with every descriptor, property, flag and rollback
//     index kept, the changed partition's hashtree descriptor replaced, chain descriptors pointing at
//     re-signed images given the new public key, and signed with the key given. A locked
//     bootloader boots it only if that key is the one it trusts (the OEM's).
//   - sparse partition image: a partition image file in Android's sparse format (img2simg). It is
//     expanded into the output's temporary directory, patched as a raw image, and written back
//     sparse under its name with its block size (RAW chunks, FILL chunks for repeated words and
//     zeros; never DONT_CARE, which fastboot leaves unwritten under dm-verity's hashes).
//   - sparse super or vbmeta image: expanded into the temporary directory (CRC32 chunks checked)
//     when it must change, patched raw, and written back sparse with its input block size.
//   - factory zip, image zip: see firmware/factoryzip. The image zip's members are unpacked
//     (names checked, sizes bounded, CRCs checked) into a temporary directory next to the
//     output, the directory patch runs on it, and the output is either that directory or a zip
//     of the input's shape: the same entries, order, methods, times, attributes and comments,
//     unchanged entries copied raw (not recompressed), changed images compressed with their
//     entry's method, a nested image zip rebuilt and stored as its entry was.
//
// It works on a directory of partition images, a factory zip or an image zip, whose changed
// partitions are EROFS or ext4: partition image files, raw or sparse (grown when the rewrite no
// longer fits), or logical partitions of a super.img, raw or sparse, written into their extents
// (grown within their group when needed, the LP metadata rewritten). Anything else is refused
// with an error saying what and why (ErrUnsupported, ErrBadZip), never half done: the output is
// written under a temporary name and renamed when complete, and the input is never modified.
package imagepatch
