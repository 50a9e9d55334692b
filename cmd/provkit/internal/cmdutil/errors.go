package cmdutil

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes, documented in README.md. Every command's EXIT STATUS block refers to these.
const (
	ExitOK            = 0   // success: everything verified, compliant, or done
	ExitError         = 1   // an error stopped the command (unreadable file, network failure, bug)
	ExitUsage         = 2   // bad flags or arguments
	ExitDevicesFailed = 3   // some devices could not be processed (offline, vanished, flash failed)
	ExitNotCompliant  = 4   // verification or compliance failed: the answer is "no"
	ExitInterrupted   = 130 // cancelled by Ctrl-C or SIGTERM
)

// FlagError is a usage error: wrong flags or arguments. It maps to ExitUsage.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf returns a usage error.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// CodeError carries an exit code other than ExitError. A nil Err means the command already told the
// user everything (the verdict is on stdout) and nothing more is printed.
type CodeError struct {
	Code int
	Err  error
}

func (e *CodeError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *CodeError) Unwrap() error { return e.Err }

// Silent reports the exit code without a message: the command has already printed its result.
func Silent(code int) error { return &CodeError{Code: code} }

// NotCompliant wraps err so the command exits with ExitNotCompliant and prints err.
func NotCompliant(err error) error { return &CodeError{Code: ExitNotCompliant, Err: err} }

// ExitCode maps an error returned by a command to the process exit code. It is the only place that
// does so.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *CodeError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	var fe *FlagError
	if errors.As(err, &fe) {
		return ExitUsage
	}
	return ExitError
}

// IsSilent reports whether err should not be printed (the command printed its own result).
func IsSilent(err error) bool {
	var ee *CodeError
	return errors.As(err, &ee) && ee.Err == nil
}
