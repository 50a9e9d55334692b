// Package report implements "provkit report": one printable HTML page from attestations and
// JSON results.
package report
