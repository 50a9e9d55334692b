// Package avb reads Android Verified Boot 2.0 metadata (libavb / avbtool format) read-only through
// io.ReaderAt, checks its signature, and checks the partitions it describes against their bytes, so a
// firmware image can be certified offline. It also writes them (write.go): descriptors, public keys,
// signed vbmeta images (BuildVBMeta; OptionsOf + Replace rebuild one keeping every other descriptor,
// property, flag and rollback index) and hashtree/hash footers laid out as avbtool lays them out
// (without FEC), byte for byte.
//
// Terms:
//
//   - vbmeta image: a 256-byte header (magic "AVB0", big-endian), then the authentication block (the
//     hash of header+auxiliary block and the signature over it), then the auxiliary block (descriptors,
//     the public key, optional public-key metadata). It is either a partition of its own (vbmeta.img)
//     or embedded in a partition behind a footer.
//   - footer: the last 64 bytes of a partition (magic "AVBf"): the original image size and where the
//     embedded vbmeta image and, for hashtree partitions, the verity tree are.
//   - algorithm: how the vbmeta is signed: NONE or SHA256/SHA512 with RSA 2048/4096/8192, PKCS#1 v1.5.
//   - public key: AVB's own encoding: key size in bits, n0inv, the big-endian modulus n and rr = R² mod
//     n (R = 2^bits); the exponent is 65537. Its SHA-1 and SHA-256 identify the signer (the "key digest").
//   - descriptor: a tagged record in the auxiliary block: property (key=value), hashtree (dm-verity root
//     digest of a partition), hash (digest of salt + the whole partition), kernel cmdline, and chain
//     partition (a partition with its own vbmeta signed by the key given here).
//   - rollback index / location: the anti-rollback counter the bootloader compares, and which of its
//     slots holds it.
//
// Verification answers separately "is the vbmeta authentic" (hash and RSA signature, key digest) and
// "do the partitions still match it" (hash and hashtree descriptors recomputed from the partitions'
// bytes). A mismatch is a result, not an error: Report.Mismatched names the partitions that no longer
// match their vbmeta.
package avb
