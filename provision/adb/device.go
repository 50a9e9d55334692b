package adb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Device runs high-level operations on one device over any Transport. It is safe for concurrent
// use: each operation opens its own stream.
type Device struct {
	t Transport

	mu       sync.Mutex
	features Features
}

// NewDevice returns a Device that works through t.
func NewDevice(t Transport) *Device { return &Device{t: t} }

// Serial returns the device's serial.
func (d *Device) Serial() string { return d.t.Serial() }

// Transport returns the transport the device is reached through.
func (d *Device) Transport() Transport { return d.t }

// Features returns the device's features (cached after the first successful call).
func (d *Device) Features(ctx context.Context) (Features, error) {
	d.mu.Lock()
	f := d.features
	d.mu.Unlock()
	if f != nil {
		return f, nil
	}
	f, err := d.t.Features(ctx)
	if err != nil {
		return nil, d.fail(ctx, "reading features", err)
	}
	d.mu.Lock()
	d.features = f
	d.mu.Unlock()
	return f, nil
}

// State returns the device's connection state now.
func (d *Device) State(ctx context.Context) (State, error) { return d.t.State(ctx) }

// fail wraps err in a DeviceError naming the serial and, as far as it can be learnt, the state the
// device is in now: the state err implies, or a fresh look when the link broke mid-command.
func (d *Device) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var de *DeviceError
	if errors.As(err, &de) && de.Serial == d.Serial() {
		if de.Op == op {
			return err
		}
		// One mention of the device: "reading properties: reading features on X (offline): ...".
		return &DeviceError{Op: op + ": " + de.Op, Serial: de.Serial, State: de.State, Err: de.Err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	st := stateOf(err)
	if st == "" && ctx.Err() == nil && errors.Is(err, ErrClosed) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if s, serr := d.t.State(sctx); serr == nil || s == StateGone {
			st = s
		}
		cancel()
	}
	return &DeviceError{Op: op, Serial: d.Serial(), State: st, Err: err}
}

// open opens service, wrapping failures with op.
func (d *Device) open(ctx context.Context, op, service string) (Stream, error) {
	s, err := d.t.Open(ctx, service)
	if err != nil {
		return nil, d.fail(ctx, op, err)
	}
	return s, nil
}

// Exec runs cmd with the exec: service: raw bytes, no terminal, no stderr separation, no exit
// status. stdin (may be nil) is copied to the command, but the adb transport cannot signal its end:
// the command must know how much to read (as "cmd package install -S <size>" does); use
// ShellStream for commands that read to end of input. Output goes to stdout until the command
// closes the stream. A command that exits without reading all its input is not an error.
func (d *Device) Exec(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	op := fmt.Sprintf("running %q", truncate(cmd, 80))
	s, err := d.open(ctx, op, "exec:"+cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	werr := make(chan error, 1)
	if stdin != nil {
		go func() {
			// Only a failure to read the local input is an error; the device closing the stream
			// under the copy is the command finishing.
			buf := make([]byte, 64<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if _, werr2 := s.Write(buf[:n]); werr2 != nil {
						werr <- nil
						return
					}
				}
				if err == io.EOF {
					werr <- nil
					return
				}
				if err != nil {
					werr <- err
					return
				}
			}
		}()
	} else {
		werr <- nil
	}
	if _, err := io.Copy(stdout, s); err != nil {
		return d.fail(ctx, op, fmt.Errorf("reading output: %w", err))
	}
	s.Close() // ends the input copy if the command stopped reading
	if err := <-werr; err != nil {
		return d.fail(ctx, op, fmt.Errorf("reading input: %w", err))
	}
	return nil
}

// ExecOutput runs cmd with exec: and returns its output.
func (d *Device) ExecOutput(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := d.Exec(ctx, cmd, nil, &out)
	return out.Bytes(), err
}

// RebootTarget says where a device reboots to.
type RebootTarget string

// Reboot targets adbd understands.
const (
	RebootSystem             RebootTarget = ""
	RebootBootloader         RebootTarget = "bootloader"
	RebootRecovery           RebootTarget = "recovery"
	RebootSideload           RebootTarget = "sideload"
	RebootSideloadAutoReboot RebootTarget = "sideload-auto-reboot"
	RebootFastboot           RebootTarget = "fastboot" // userspace fastboot (fastbootd)
)

// Reboot reboots the device (reboot:<target>). It returns once the device has taken the request;
// the device then leaves, so follow with Server.WaitFor to wait for its return.
func (d *Device) Reboot(ctx context.Context, target RebootTarget) error {
	op := "rebooting"
	if target != "" {
		op = "rebooting into " + string(target)
	}
	for _, r := range string(target) {
		if !(r >= 'a' && r <= 'z' || r == '-' || r >= '0' && r <= '9') {
			return &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("invalid reboot target %q", target)}
		}
	}
	s, err := d.open(ctx, op, "reboot:"+string(target))
	if err != nil {
		return err
	}
	defer s.Close()
	// adbd answers with nothing (or a failure text) and closes; the link may drop as it goes down.
	out, err := io.ReadAll(io.LimitReader(s, 4096))
	if msg := strings.TrimSpace(string(out)); msg != "" {
		return &DeviceError{Op: op, Serial: d.Serial(), Err: fmt.Errorf("device answered %q", msg)}
	}
	if err != nil && !errors.Is(err, ErrClosed) {
		return d.fail(ctx, op, err)
	}
	return nil
}
