// Package demoapk builds small, really signed APKs in pure Go, for `provkit demo` on machines that
// have no Android build tools: a binary AndroidManifest.xml (the compiled XML format aapt writes),
// a stored asset, and an APK Signature Scheme v2 signature made with an RSA key and a self-signed
// certificate. The APKs verify with provkit's own engine and with apksigner.
//
// Terms:
//   - Binary XML (AXML): the chunked format of compiled Android XML: a string pool, a resource map
//     giving the framework attribute IDs of attribute names, then namespace and element chunks.
//   - Signing block: the "APK Sig Block 42" block inserted between the ZIP entries and the central
//     directory; it holds the v2 block (ID 0x7109871a): signers, each with signed data (content
//     digests, certificates), signatures over it, and the public key.
//   - Content digest: CHUNKED_SHA256 over the entries, the central directory and the end of
//     central directory record, in 1 MiB chunks.
package demoapk
