// Package lpwrite writes super images (LP metadata 10.0, the layout lpmake writes) for tests:
// Debian has no lpmake, so tests that need a super image holding real file systems build one
// with this writer, and a test checks that it reproduces AOSP's committed lpmake output byte for
// byte.
package lpwrite
