// Package payload reads Android A/B OTA payloads (update_engine's payload.bin, magic "CrAU"), alone
// or inside an OTA zip, read-only through io.ReaderAt, so the partition images of a full OTA can be
// listed, read in place and verified without expanding them to disk.
//
// Terms:
//
//   - header: magic, major version (2 for every Android payload), manifest size and, from version 2,
//     the size of the metadata signature that follows the manifest. Header plus manifest is the
//     "metadata" (its SHA-256 is METADATA_HASH in payload_properties.txt).
//   - manifest: the DeltaArchiveManifest protobuf (update_metadata.proto). This package decodes the
//     fields it needs with google.golang.org/protobuf's protowire (the wire format only: no
//     protoc, no generated code).
//   - partition update: one partition's new size and SHA-256 (new_partition_info), for a delta also the
//     old ones, and the install operations that write it.
//   - install operation: writes destination extents (runs of blocks) of the partition. A full payload
//     uses only REPLACE (raw bytes), REPLACE_BZ (bzip2), REPLACE_XZ (xz), ZSTD (zstd, newer
//     payloads; github.com/klauspost/compress/zstd), ZERO and DISCARD; each may
//     carry the SHA-256 of its data blob. Delta operations (SOURCE_COPY, SOURCE_BSDIFF, BROTLI_BSDIFF,
//     PUFFDIFF, ZUCCHINI, LZ4DIFF_*) need the old partition: this package detects them and refuses the
//     partition with ErrDeltaPayload instead of producing wrong bytes.
//   - data blob: an operation's bytes, at data_offset from the end of the metadata signature.
//   - OTA zip: ota_from_target_files output: payload.bin stored (not compressed) in a zip with
//     payload_properties.txt and META-INF/com/android/metadata; read in place at its offset.
//
// Verity computed on the device: a payload may leave a partition's dm-verity hash tree and FEC to
// update_engine. The reader rebuilds both from the partition's own bytes the first time they are read
// (firmware/avb's BuildHashtree and BuildFEC, what update_engine does); FEC extents that do not fit
// libfec's layout fail with ErrVerityOnDevice.
//
// Reading a partition maps each requested range to the operations covering it and decompresses only
// those, keeping a bounded cache of decoded operations. An operation's declared output size is the
// limit for its decompression (bzip2/xz/zstd bombs stop there); xz dictionaries and zstd windows
// (128 MiB at most) are checked before the decoder allocates them.
package payload
