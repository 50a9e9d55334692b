// Package apk verifies and inspects Android application packages (APKs) the way Google's apksig
// library does, and reads them through an io.ReaderAt so that a large APK is never loaded whole.
//
// Terms:
//
//   - ZIP sections: an APK is a ZIP archive made of local file records (a local file header, the
//     entry's data, an optional data descriptor), then the central directory (CD, one record per
//     entry) and the End of Central Directory record (EOCD) that gives the CD's offset and size.
//   - APK Signing Block: a block placed immediately before the central directory, framed by its size
//     (twice) and the magic "APK Sig Block 42". It holds ID-value pairs: the APK Signature Scheme v2
//     block (0x7109871a), v3 (0xf05368c0), v3.1 (0x1b93ad61), source stamp (0x2b09189e, 0x6dff800d)
//     and verity padding (0x42726577).
//   - Signer: one key and its certificate chain in a scheme block. A signer signs its "signed data":
//     content digests, certificates, attributes and, for v3, an SDK range [minSdk, maxSdk].
//   - Content digest: a digest over the APK outside the signing block, computed over 1 MiB chunks of
//     the entries, the CD, and the EOCD whose CD offset is patched to point at the signing block
//     (CHUNKED_SHA256, CHUNKED_SHA512), or as a 4 KiB fs-verity Merkle tree root (VERITY_CHUNKED_SHA256).
//   - Lineage (proof of rotation): a chain of certificates, each signed by the previous key, carried by
//     a v3 signer to prove that its key replaced the older ones. Flags on each node say what the older
//     key may still do (capabilities).
//   - v1 (JAR signing): META-INF/MANIFEST.MF, *.SF and PKCS#7 blocks; verified by package jarsig.
//   - v4: a detached .idsig file holding an fs-verity Merkle tree of the whole APK and a signature over
//     its root hash, tied to the v2/v3 signer.
//   - Source stamp: a signature by the distributor (not the developer) over the APK's content digests.
//
// Verify applies apksig's rules (ApkVerifier.verify): which schemes must verify for the SDK range
// [minSdk, maxSdk], how signers of different schemes must agree, and the issue names it reports.
// Inspect reads the same metadata without a verdict.
package apk
