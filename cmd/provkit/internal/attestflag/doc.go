// Package attestflag gives every command that judges (apk verify --policy, image audit, check,
// patch --check) the same two flags, --attest <file> and --key <private key>, and writes the
// signed attestation (manifests/evidence) once the command has its verdict. The key is loaded
// when the flags are checked, so a wrong key fails before any work is done.
package attestflag
