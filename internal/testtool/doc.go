// Package testtool is for tests only: it finds the reference tools (apksigner, adb, fastboot,
// simg2img, mke2fs, mkfs.erofs, bpfmt, xmllint, ...) that tests use as oracles.
//
// A test that needs a tool calls Require. When the tool is missing the test is skipped, unless the
// environment sets PROVKIT_REQUIRE_TOOLS=1 (scripts/test.sh and CI do), in which case it fails: in CI
// a missing oracle is a broken set-up, never a silent pass.
package testtool
