// Package testline builds what a factory-line test needs: a signed sample app, a policy pinning
// its key, a simulator scenario of phones (compliant, and ones missing the app) with partitions to
// flash, and a firmware directory of images, all generated in a temporary directory.
package testline
