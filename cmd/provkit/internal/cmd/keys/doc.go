// Package keys implements "provkit keys": making the Ed25519 key pair that signs attestations.
package keys
