// Package super reads Android dynamic-partition images ("super" images) described by LP metadata
// (liblp, metadata format 10.0 to 10.2), read-only and through io.ReaderAt, so that the logical
// partitions inside (system_a, vendor_a, product_a, ...) can be listed and read in place.
//
// Terms:
//
//   - geometry: the fixed 4096-byte block (magic "gDla") that says how large one metadata copy may be
//     (metadata_max_size), how many slots there are and the logical block size. A full super image keeps
//     4096 reserved bytes, then the primary geometry at 4096 and its backup at 8192; an "empty" image
//     (super_empty.img, lpmake without partition images) holds the geometry at 0 and one metadata copy
//     at 4096 and nothing else.
//   - metadata slot: one copy of the partition tables per A/B slot. A full image stores every slot twice:
//     primary copies from 12288, backup copies after them. Open reads slot 0 unless told otherwise,
//     compares each primary with its backup and reports where they disagree.
//   - header: the metadata header (magic "0PLA", version 10.0/10.1/10.2; 128 bytes before 10.2, 256
//     from 10.2 on, which adds header flags). Its SHA-256 covers the header, a second SHA-256 covers
//     the tables that follow it.
//   - tables: partitions, extents, partition groups and block devices, each a run of fixed-size entries.
//   - extent: a run of 512-byte sectors of a logical partition. A linear extent maps the run onto a
//     block device at a physical sector; a zero extent reads as zeros.
//   - block device: a physical partition that holds extents. Device 0 is the super partition itself;
//     retrofit devices spread super over several partitions, which callers may supply with
//     Options.Devices.
//
// Hostile input (bad magic or checksums, absurd counts, tables past their region, extents past the end
// of their device or overlapping the metadata or each other) is rejected with an error naming the
// structure and its byte offset; nothing is allocated from an unchecked length.
package super
