// Package testapk builds small signed APKs for tests with the real Android build tools (aapt and
// apksigner), so tests of the simulator and of device checks use genuine, verifiable APKs with the
// package name, version and signer they need. Android's framework attributes are resolved against a
// tiny generated framework package that pins their real resource IDs, so no SDK android.jar is
// needed.
package testapk
