// Package apk is the "provkit apk" command group: it only holds the verify and inspect
// subcommands.
package apk
