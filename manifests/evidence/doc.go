// Package evidence turns a provkit verdict into evidence anyone can re-check later: an in-toto
// Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) whose
// subjects are what was judged (APK and image files by SHA-256; a device by its serial and build
// fingerprint) and whose predicate (PredicateType) holds the verdict, every rule with its result and
// evidence, the policy's name and SHA-256, and which provkit gave it; signed in a DSSE envelope
// (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md) with an Ed25519 key.
//
// Terms:
//   - PAE, the DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP
//     body, lengths in ASCII decimal. The signature is over PAE(payloadType, payload), never over
//     the JSON of the envelope, so re-encoding the envelope cannot change what was signed.
//   - key id: the lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo.
//
// The encoding is small and fully specified, so it is written here rather than taken from
// go-securesystemslib (which the module proxy did not list for this project) — tests pin it to
// the spec's PAE example and to OpenSSL's Ed25519 verification.
package evidence
