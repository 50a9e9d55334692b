// Package bootimg reads Android boot image headers, read-only through io.ReaderAt: boot images v0 to
// v4 (boot.img, recovery.img, init_boot.img), vendor_boot v3/v4, and the DT table images (dtb.img,
// dtbo.img) made by mkdtboimg, with enough detail for `provkit image info`.
//
// Terms:
//
//   - boot image: magic "ANDROID!", a header, then page-aligned sections: kernel, ramdisk, second-stage
//     loader, recovery DTBO (v1/v2), DTB (v2) and, for v4, a boot signature. From v3 the page size is
//     fixed at 4096 and the board-specific parts moved to vendor_boot.
//   - vendor_boot: magic "VNDRBOOT": vendor ramdisk(s), DTB, the vendor ramdisk table (v4: named
//     ramdisk fragments with a type) and bootconfig (v4: key=value boot parameters).
//   - os version / patch level: packed in one 32-bit field: version a.b.c (7 bits each) and the
//     security patch year and month.
//   - section: a named byte range of the image (kernel, ramdisk, ...), opened with Image.Section.
//   - DT table: mkdtboimg's container (magic 0xd7b7ab1e, big-endian) listing device-tree blobs.
package bootimg
