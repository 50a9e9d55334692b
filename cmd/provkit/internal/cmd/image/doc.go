// Package image is the "provkit image" command group: commands that read and convert Android
// firmware images offline. Each subcommand lives in its own package below this one and is listed
// in subcommands.
package image
