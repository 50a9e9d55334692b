// Package patch is `provkit image patch`: flags to options, then manifests/imagepatch does the
// work and this package prints its report.
package patch
