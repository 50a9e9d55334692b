// Package root assembles provkit's command tree and runs it: it is the only place where a command's
// error becomes a message on stderr and an exit code.
package root
