// Package factoryzip opens Android factory image zips, read-only, and hands out each partition image
// inside as an io.ReaderAt with its size, so `provkit image` can read what an OEM actually ships.
//
// Terms:
//
//   - factory zip: the outer zip (e.g. oriole-up1a.231005.007-factory-1234abcd.zip) holding a
//     directory <device>-<build>/ with the bootloader and radio images, flash scripts and the nested
//     image zip.
//   - image zip: image-<device>-<build>.zip, nested in the factory zip (or given alone): the partition
//     images (boot.img, system.img, vendor.img, super_empty.img, vbmeta.img, ...) and android-info.txt.
//   - android-info.txt: "require board=...", "require version-bootloader=..." lines that fastboot
//     checks before flashing.
//
// Reading strategy: an entry stored without compression is read in place (an io.SectionReader over
// its bytes) at no cost. A deflated entry cannot be read at random offsets, so the first open
// decompresses it once, streaming: up to Options.MemoryLimit into memory, larger ones into a temporary
// file in Options.TempDir that is unlinked as soon as it is created (nothing is left behind, even if
// the process dies) and closed by Archive.Close. A deflated nested image zip is handled the same way.
// The entry's declared uncompressed size is the limit of its decompression, and Options.MaxExtract
// bounds the total extracted, so a zip bomb fails with an error naming the entry.
package factoryzip
