// Package attest implements "provkit attest verify" and "provkit attest show": checking a signed
// attestation written by --attest, and printing it for a person.
package attest
