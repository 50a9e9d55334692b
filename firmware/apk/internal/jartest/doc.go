// Package jartest builds v1-signed (JAR-signed) APKs for tests, without Java: the manifest,
// the signature files and PKCS#7 signature blocks, with knobs to produce every variation and
// defect the verifier must handle (digest algorithms, signed attributes, several signers and
// SignerInfos, X-Android-APK-Signed, edits after signing). Imported only by _test.go files.
//
// Terms follow package jarsig: manifest, signature file (.SF), signature block (.RSA/.DSA/.EC),
// signer.
package jartest
