// Package cert parses the X.509 certificates that sign APKs, tolerantly, the way apksig does.
//
// An APK's signer is identified by its certificate, and pinning (a policy's signers[].sha256)
// compares digests of that certificate. apksig digests the certificate exactly as it is encoded
// in the signature, never a re-encoding, and so does this package: Certificate.Raw is the
// encoded certificate as found, and SHA256/SHA1/MD5 are taken over it.
//
// Terms:
//   - Certificate: an X.509 v1/v2/v3 certificate (RFC 5280). Signing certificates are usually
//     self-signed; nothing here checks a certificate's own signature, validity period or chain,
//     because Android does not either.
//   - Tolerant: apksig accepts certificates that Go's crypto/x509 rejects: BER encodings (long-form
//     lengths with leading zero octets, indefinite lengths), negative or zero serial numbers,
//     RSA moduli encoded as negative INTEGERs, unusual string types in names, unknown extensions.
//     Parse accepts those too and rejects what Java's certificate factory would (a wrong structure,
//     an unknown version, a signature algorithm that disagrees with the one in the TBS part).
//   - DN: a distinguished name (subject or issuer). Name.String formats it as apksigner prints it
//     (Java's X500Name.toString: most specific RDN first, "CN=..., OU=..., O=...", " + " between
//     the values of a multi-valued RDN, quotes around values with special characters).
//   - Key algorithm and size: "RSA" (modulus bits), "EC" (curve bits: 256, 384, 521), "DSA"
//     (prime p bits), as apksigner prints them.
package cert
