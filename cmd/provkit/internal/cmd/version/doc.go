// Package version implements `provkit version`: which provkit this is (module version, VCS
// revision and time, Go toolchain), read from the binary's build information by internal/buildinfo.
package version
