// Package ber reads ASN.1 values encoded with the Basic Encoding Rules (X.690), the way apksig's
// BER parser does, for the signature formats of firmware/apk.
//
// Terms:
//   - TLV: one encoded value: identifier octets (class, constructed bit, tag number), length
//     octets, contents octets.
//   - DER: the distinguished subset of BER (minimal lengths, definite lengths only). Signing tools
//     emit DER, but some (BouncyCastle in signapk, old keytool certificates) emit BER: lengths in
//     long form with leading zero octets, or indefinite lengths ended by end-of-contents octets
//     (0x00 0x00). apksig accepts both, so this package does too.
//
// The reader never copies: every TLV's Raw and Content slice the input, so a caller can digest
// a certificate over exactly the bytes that were signed. Lengths are bounded by the input, and
// the nesting depth of indefinite-length values is bounded by MaxDepth.
//
// Deliberately rejected although apksig's reader accepts them: a primitive value with an
// indefinite length (forbidden by X.690 8.1.3.2) and a constructed OCTET STRING where a
// primitive one is expected (apksig would read its raw inner TLVs as the string's bytes).
package ber
