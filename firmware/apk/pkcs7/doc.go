// Package pkcs7 parses the PKCS#7 / CMS SignedData of a JAR signature block
// (META-INF/*.RSA, *.DSA, *.EC) and verifies its SignerInfos the way apksig and Android do.
//
// Terms:
//   - SignedData (RFC 5652): digest algorithms, the encapsulated content's type (the content
//     itself, the .SF file, is detached), a bag of certificates and one or more SignerInfos.
//   - SignerInfo: which certificate signed (issuer and serial number, or a subject key
//     identifier), the digest algorithm, optional signed attributes, the signature algorithm and
//     the signature.
//   - Signed attributes: when present, the signature covers them (re-tagged as a SET) instead of
//     the content, and they carry the content's type and message digest.
//   - API level ranges: Android's JAR verifier accepts each (digest algorithm, signature
//     algorithm) OID pair only on some platform versions; SupportedSDKs gives apksig's table.
//     Verification is asked for a range [MinSDK, MaxSDK] and must hold on every level in it.
//
// Parsing reads BER (apksig does: signapk emits indefinite lengths) with every length bounded by
// the input. Certificates are kept exactly as encoded so that digests pin the right bytes.
// Verification results are classified like apksig's: a SignerInfo either verifies, does not
// verify (another SignerInfo may), or fails with ErrDecoding (apksig's JAR_SIG_PARSE_EXCEPTION),
// ErrVerification (JAR_SIG_VERIFY_EXCEPTION) or an *UnsupportedAlgorithmError
// (JAR_SIG_UNSUPPORTED_SIG_ALG).
package pkcs7
