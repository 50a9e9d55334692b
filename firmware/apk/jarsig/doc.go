// Package jarsig verifies an APK's v1 signature (JAR signing) the way apksig's V1SchemeVerifier
// does, for a range of Android API levels.
//
// Terms:
//   - Manifest: META-INF/MANIFEST.MF. A main section, then one section per signed entry
//     ("Name: <entry>") holding digests of the entry's uncompressed bytes ("SHA-256-Digest: ...").
//     Lines end with CRLF, LF or CR; a line starting with a space continues the previous one; a
//     blank line ends a section.
//   - Signature file: META-INF/<signer>.SF, same syntax. Its main section holds digests of the
//     whole manifest ("-Digest-Manifest") and of the manifest's main section
//     ("-Digest-Manifest-Main-Attributes"); its other sections hold digests of the manifest's
//     sections. It may name the APK Signature Schemes the APK was also signed with
//     (X-Android-APK-Signed), so that stripping a v2/v3 signature is detected.
//   - Signature block: META-INF/<signer>.RSA, .DSA or .EC: a PKCS#7 SignedData (package pkcs7)
//     whose detached content is the signature file.
//   - Signer: one signature file + signature block pair. Android requires every signed entry
//     to be signed by the same set of signers; signers that sign nothing Android checks are
//     "ignored" (apksig's ignoredSigners).
//   - API level range: Options.MinSDK..MaxSDK. Which digest attributes Android reads, which
//     signature algorithms it accepts and which checks it makes depend on the API level; the
//     signature must verify on every level in the range.
//   - Issue: an error or warning named like apksig's ApkVerifier.Issue (JAR_SIG_*), so that
//     results compare with apksigner's.
//
// Verify reads each signed entry once, computing every digest the manifest asks for in that one
// pass, with pooled buffers. Metadata files (manifest, signature files, signature blocks) are
// read into memory only up to fixed limits; an entry that declares more is rejected before any
// allocation.
package jarsig
