// Command gendocs writes provkit's command reference from the cobra command tree: one Markdown page
// per command under docs/cli/ and one man page per command under docs/man/ (section 1). Run it from
// the repository root after adding or changing a command, flag or help text:
//
//	go run ./cmd/provkit/internal/gendocs
//
// (or "go generate ./cmd/provkit"). A test regenerates the pages into a temporary directory and
// fails when the committed ones differ, so the reference never drifts from the binary.
package main
