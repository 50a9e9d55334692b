package adb

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, checked with errors.Is. Every error returned by this package that concerns a
// device also names its serial; these sentinels say which state the device was in.
var (
	// ErrNoServer: no adb server answers on the host-protocol address.
	ErrNoServer = errors.New("no adb server")
	// ErrDeviceNotFound: the adb server (or the network) does not know the device.
	ErrDeviceNotFound = errors.New("device not found")
	// ErrOffline: the device is attached but offline (booting, rebooting, connecting, broken link).
	ErrOffline = errors.New("device offline")
	// ErrUnauthorized: the device has not accepted this host's RSA key.
	ErrUnauthorized = errors.New("device unauthorized")
	// ErrClosed: the connection to the device (or the stream) closed before the command completed.
	ErrClosed = errors.New("connection closed")
	// ErrNotSupported: the device lacks the feature a call needs.
	ErrNotSupported = errors.New("not supported by the device")
)

// NoServerError reports that nothing answered on the adb server's address.
type NoServerError struct {
	Addr string
	Err  error
}

func (e *NoServerError) Error() string {
	return fmt.Sprintf("no adb server on %s (%v); run 'adb start-server' or set ANDROID_ADB_SERVER_PORT", e.Addr, e.Err)
}

func (e *NoServerError) Unwrap() []error { return []error{ErrNoServer, e.Err} }

// FailError is a FAIL reply from the adb server or from a device service: the request that was
// refused and the reason given, verbatim. It matches ErrDeviceNotFound, ErrOffline or
// ErrUnauthorized with errors.Is when the reason says so.
type FailError struct {
	Request string
	Message string
}

func (e *FailError) Error() string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = "(no reason given)"
	}
	return fmt.Sprintf("%s refused: %s", e.Request, msg)
}

// Is maps the adb server's wording onto the package's sentinel errors.
func (e *FailError) Is(target error) bool {
	return target != nil && classifyFail(e.Message) == target
}

// classifyFail maps the adb server's FAIL texts (transport.cpp acquire_one_transport and friends)
// to a sentinel, or nil.
func classifyFail(msg string) error {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "unauthorized"), strings.Contains(m, "still authorizing"):
		return ErrUnauthorized
	case strings.Contains(m, "offline"), strings.Contains(m, "still connecting"):
		return ErrOffline
	case strings.Contains(m, "not found"), strings.Contains(m, "no devices"),
		strings.Contains(m, "no emulators"), strings.Contains(m, "no device with"),
		strings.Contains(m, "no such device"):
		return ErrDeviceNotFound
	}
	return nil
}

// DeviceError says which device an operation failed on and in which state the device was then
// (as far as the client knows it: "device", "offline", "unauthorized", "gone", ...). It matches the
// sentinel its state stands for (ErrUnauthorized, ErrOffline, ErrDeviceNotFound) with errors.Is, so
// its cause need not repeat the state. What a person should do about it is the state's Hint
// (StateOf(err).Hint()), which a user interface adds once, at the end of its message.
type DeviceError struct {
	Op     string // what was being done: "running 'pm path x'", "pulling /sdcard/a"
	Serial string
	State  State
	Err    error
}

func (e *DeviceError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("%s on %s: %v", e.Op, e.Serial, e.Err)
	}
	return fmt.Sprintf("%s on %s (%s): %v", e.Op, e.Serial, e.State, e.Err)
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of the error's state.
func (e *DeviceError) Is(target error) bool {
	return target != nil && sentinelOf(e.State) == target
}

func sentinelOf(s State) error {
	switch s {
	case StateUnauthorized, StateAuthorizing:
		return ErrUnauthorized
	case StateOffline, StateConnecting:
		return ErrOffline
	case StateGone:
		return ErrDeviceNotFound
	}
	return nil
}

// StateOf returns the device state err reports: the state of the outermost DeviceError that knows
// one, else the state its sentinel implies, "" when err says nothing about it.
func StateOf(err error) State {
	for e := err; e != nil; {
		var de *DeviceError
		if !errors.As(e, &de) {
			break
		}
		if de.State != "" {
			return de.State
		}
		e = de.Err
	}
	return stateOf(err)
}

// stateOf infers the device state implied by err's sentinels, "" when err says nothing about it.
func stateOf(err error) State {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return StateUnauthorized
	case errors.Is(err, ErrOffline):
		return StateOffline
	case errors.Is(err, ErrDeviceNotFound):
		return StateGone
	}
	return ""
}
