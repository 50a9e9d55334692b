// Package report renders provkit's evidence as one self-contained HTML page a person can read and
// print (A4): what was judged, against which policy, by which provkit, the verdict, every rule with
// its evidence, the digests, and whether each attestation's signature verified. For many phones (a
// check, or a factory line's ledger export) it opens with a summary — counts by verdict and by
// failed rule — then one row per phone.
//
// Inputs are the documents provkit writes: a DSSE attestation (--attest), the JSON of
// `check --json`, `image audit --json` or `ledger export --json`. Every string in them is data
// from a policy, an image or a phone, and html/template escapes it where it lands; the page
// loads nothing from anywhere (no script, no font, no image fetched).
package report
