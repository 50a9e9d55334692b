// Package dertest builds DER (and deliberately non-DER) encodings for the tests of the APK
// signature packages: certificates with unusual names, serials and encodings, PKCS#7 blocks,
// hostile inputs. It is imported only by _test.go files.
//
// Terms: a TLV is one tag-length-value encoding; Tag builds one with a minimal (DER) length,
// LongLen with a long-form length padded with zero octets (valid BER, not DER), Indefinite with
// an indefinite length and end-of-contents octets.
package dertest
