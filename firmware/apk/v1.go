package apk

import "context"

// v1Signer and v1Outcome are JAR signature verification's answer, as package jarsig gives it.
type v1Signer struct {
	name             string
	certs            [][]byte // raw certificates, [0] = the signer's
	errors, warnings []Issue
}

type v1Outcome struct {
	verified         bool
	signers          []v1Signer
	errors, warnings []Issue
}

// verifyV1 verifies the APK's JAR signature. found holds the v2+ schemes present in the APK Signing
// Block (for the X-Android-APK-Signed anti-stripping check).
func verifyV1(ctx context.Context, z *zipArchive, minSDK, maxSDK int, found map[int]bool) (*v1Outcome, error) {
	// Placeholder until package jarsig (built in parallel) is merged.
	return &v1Outcome{errors: []Issue{{Code: "V1_VERIFIER_UNAVAILABLE", Message: "JAR signature verification is not wired in yet"}}}, nil
}

// v1Certificates returns the JAR signers' certificates without verifying anything (for Inspect).
func v1Certificates(ctx context.Context, z *zipArchive) []Signer {
	return nil
}
