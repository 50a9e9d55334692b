// Package policy is provkit's contract: the preinstall policy file (YAML) that says which apps a
// compliant device or firmware must carry, signed by which keys, at which minimum version, on which
// partition and with which permissions — and the rules that judge facts against it.
//
// Terms:
//   - Policy: one `kind: PreinstallPolicy` document (apiVersion provkit.dev/v1), loaded by Load or
//     Parse and validated before use; an invalid file is rejected with file:line and what to fix.
//   - App: one mandated package. Its Signers are pins: SHA-256 digests of signer certificates taken
//     over the certificate bytes exactly as encoded in the APK signature.
//   - Facts: what an input says about itself once verified (an APK's package, version and signers;
//     later a device's or an image's packages). Facts come from the floors below (firmware) or above
//     (provision); this package only judges them.
//   - Check: the result of one rule on one set of facts: the rule's ID, pass or fail, and a detail
//     that says what was found and what was expected.
//
// The same rules judge an APK file, a firmware image and a live device, so that a verdict means the
// same thing wherever it was reached.
package policy
