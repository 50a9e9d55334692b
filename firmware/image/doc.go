// Package image opens whatever a user points provkit at — a raw or sparse partition image, a
// super image, a factory image zip, an A/B OTA zip or payload.bin, a vbmeta or boot image, or a
// directory of partition images — and presents it as one list of partitions, each with its format,
// its bytes as an io.ReaderAt and, for ext4 and EROFS, a read-only fs.FS.
//
// Terms:
//
//   - input kind: what the path is (directory, factory zip, image zip, OTA zip, payload, super
//     image, partition image).
//   - partition: a named image of the input: a file of a directory or zip (system.img -> system),
//     a logical partition of a super image (system_a -> system, slot a), a partition of a payload.
//     A single partition image takes its name from Options.Partition or its file name.
//   - layer: a container the partition's bytes were read through, outermost first: "zip entry",
//     "extracted" (a deflated zip entry decompressed once to memory or an unlinked temporary
//     file), "payload", "super", "sparse".
//   - format: what the partition's bytes hold, found by magic numbers: ext4, erofs, super, vbmeta,
//     boot, vendor_boot, dt-table, squashfs, f2fs (recognised, not readable), raw (anything else).
//   - slot: A/B devices keep two copies of logical partitions (system_a, system_b). The selected
//     slot (Options.Slot, else the one whose partitions hold data, a when both do) is active; the
//     other slot's partitions are listed but not part of the file system view.
//
// Everything is read in place through io.ReaderAt, layer on layer (a sparse super image in a
// factory zip reads each logical partition's blocks through the sparse chunk index and the zip
// entry's offset). The one exception is a deflated zip entry, which cannot be read at random
// offsets: firmware/factoryzip decompresses it once, when the partition is first needed (Load), to
// memory (up to 16 MiB) or to a temporary file that is unlinked at once. Pixel factory zips deflate
// their images, so reading one costs one decompression per partition used; an audit loads only the
// partitions that hold apps and configuration.
//
// Memory is bounded by the structures read: sparse chunk indexes, LP metadata, payload manifests,
// the file systems' bounded caches.
package image
