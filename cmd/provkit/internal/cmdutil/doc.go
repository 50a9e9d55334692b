// Package cmdutil holds what every provkit command shares: the exit codes and the one place that maps
// an error to an exit code, and the usage-error type that flag validation returns.
package cmdutil
