// Package buildinfo says which provkit this is: the module version, the VCS revision and time and
// whether the working tree was modified, read from the Go build information that `go build` and
// `go install` embed. Commands print it (`provkit version`) and evidence records it (attestations,
// ledgers), so a verdict can always be traced back to the exact tool that gave it.
package buildinfo
