package adb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/provkit/provkit/provision/adb/wire"
)

// MaxShellOutput bounds what Shell collects from one command (stdout and stderr each); use
// ShellStream for more.
const MaxShellOutput = 64 << 20

// ShellResult is the outcome of a command run with Shell.
type ShellResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	// Legacy is set when the device lacks shell_v2: stderr is then mixed into Stdout, and the exit
	// code was recovered from a marker the command printed last.
	Legacy bool
}

// ExitError reports a command that ran and exited non-zero.
type ExitError struct {
	Code   int
	Stderr string // the start of stderr, for the message
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return fmt.Sprintf("exit status %d: %s", e.Code, e.Stderr)
}

func (r *ShellResult) exitErr() error {
	msg := r.Stderr
	if r.Legacy {
		msg = r.Stdout
	}
	return &ExitError{Code: r.ExitCode, Stderr: truncate(string(bytes.TrimSpace(msg)), 300)}
}

// Err returns an *ExitError when the command exited non-zero, nil otherwise.
func (r *ShellResult) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return r.exitErr()
}

// ShellOptions direct a command's streams.
type ShellOptions struct {
	Stdin  io.Reader // copied to the command, then closed; nil: the command sees end of input at once
	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded; with a legacy shell stderr arrives on Stdout
	// Legacy forces the legacy shell: protocol even when the device has shell_v2.
	Legacy bool
}

// Shell runs cmd (a shell command line; build it with Quote) and returns its output and exit code.
// A non-zero exit is not an error: look at ExitCode, or call Err. The error reports a command that
// could not be run or whose connection broke.
func (d *Device) Shell(ctx context.Context, cmd string) (*ShellResult, error) {
	return d.ShellLimit(ctx, cmd, MaxShellOutput)
}

// ErrOutputTooLarge says a command printed more than its caller accepts.
var ErrOutputTooLarge = errors.New("output too large")

// maxStderr bounds the stderr a bounded command keeps: it only ever serves as a message.
const maxStderr = 64 << 10

// ShellLimit is Shell for a command whose output a parser reads: stdout is bounded by maxStdout
// (what that parser accepts), stderr by 64 KiB, and the command is stopped as soon as it prints
// more — a device answering with endless output costs at most maxStdout bytes of memory, not
// MaxShellOutput.
func (d *Device) ShellLimit(ctx context.Context, cmd string, maxStdout int) (*ShellResult, error) {
	if maxStdout <= 0 || maxStdout > MaxShellOutput {
		maxStdout = MaxShellOutput
	}
	stdout, stderr := limitedBuffer{max: maxStdout, abort: true}, limitedBuffer{max: min(maxStdout, maxStderr)}
	code, legacy, err := d.shell(ctx, cmd, ShellOptions{Stdout: &stdout, Stderr: &stderr})
	r := &ShellResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code, Legacy: legacy}
	if stdout.over {
		return r, &DeviceError{Op: fmt.Sprintf("running %q", truncate(cmd, 80)), Serial: d.Serial(), State: StateDevice,
			Err: fmt.Errorf("%w: the command printed more than %d bytes, more than provkit reads from it", ErrOutputTooLarge, maxStdout)}
	}
	if err != nil {
		return r, err
	}
	return r, nil
}

// Run runs cmd and returns its stdout; a non-zero exit is an error (an *ExitError wrapped with the
// device) carrying the start of stderr.
func (d *Device) Run(ctx context.Context, cmd string) ([]byte, error) {
	r, err := d.Shell(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if r.ExitCode != 0 {
		return r.Stdout, &DeviceError{Op: fmt.Sprintf("running %q", truncate(cmd, 80)), Serial: d.Serial(), State: StateDevice, Err: r.exitErr()}
	}
	return r.Stdout, nil
}

// ShellStream runs cmd with its streams connected to opts and returns its exit code.
func (d *Device) ShellStream(ctx context.Context, cmd string, opts ShellOptions) (int, error) {
	code, _, err := d.shell(ctx, cmd, opts)
	return code, err
}

func (d *Device) shell(ctx context.Context, cmd string, opts ShellOptions) (code int, legacy bool, err error) {
	op := fmt.Sprintf("running %q", truncate(cmd, 80))
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	v2 := !opts.Legacy
	if v2 {
		f, err := d.Features(ctx)
		if err != nil {
			return -1, false, err
		}
		v2 = f.Has(FeatureShellV2)
	}
	if !v2 {
		code, err := d.shellLegacy(ctx, op, cmd, opts)
		return code, true, err
	}
	s, err := d.open(ctx, op, wire.ShellServiceName(true, cmd))
	if err != nil {
		return -1, false, err
	}
	defer s.Close()

	// The feeder ends at end of input, or when the stream closes under it; its errors only mean
	// that the command stopped reading, which the exit status tells better.
	go feedShellStdin(s, opts.Stdin)

	rd := wire.NewShellReader(s)
	for {
		id, data, err := rd.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w before the command's exit status", ErrClosed)
			}
			return -1, false, d.fail(ctx, op, err)
		}
		switch id {
		case wire.ShellStdout:
			if _, err := opts.Stdout.Write(data); err != nil {
				return -1, false, d.fail(ctx, op, fmt.Errorf("writing stdout: %w", err))
			}
		case wire.ShellStderr:
			if _, err := opts.Stderr.Write(data); err != nil {
				return -1, false, d.fail(ctx, op, fmt.Errorf("writing stderr: %w", err))
			}
		case wire.ShellExit:
			// The exit status ends the command; its stdin feeder stops when the stream closes.
			return int(data[0]), false, nil
		}
	}
}

// feedShellStdin copies stdin into shell v2 stdin packets, then closes the command's stdin.
func feedShellStdin(w io.Writer, stdin io.Reader) error {
	if stdin != nil {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				if werr := wire.WriteShellPacket(w, wire.ShellStdin, buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	return wire.WriteShellPacket(w, wire.ShellCloseStdin, nil)
}

// shellLegacy runs cmd over the legacy shell: service, which has no exit status and mixes stderr
// into stdout. The exit status is recovered by having the shell print a random marker and $? last.
func (d *Device) shellLegacy(ctx context.Context, op, cmd string, opts ShellOptions) (int, error) {
	if opts.Stdin != nil {
		return -1, &DeviceError{Op: op, Serial: d.Serial(), State: StateDevice, Err: fmt.Errorf("%w: stdin needs shell_v2", ErrNotSupported)}
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	marker := "PROVKIT_EXIT_" + hex.EncodeToString(nonce[:]) + "="
	// A subshell keeps the marker printed even when cmd calls exit; the newline ends any comment.
	wrapped := "(" + cmd + "\n); echo \"" + marker + "$?\""
	s, err := d.open(ctx, op, wire.ShellServiceName(false, wrapped))
	if err != nil {
		return -1, err
	}
	defer s.Close()
	tw := &tailWriter{w: opts.Stdout, keep: len(marker) + 8}
	if _, err := io.Copy(tw, s); err != nil {
		return -1, d.fail(ctx, op, err)
	}
	tail := tw.hold
	i := bytes.LastIndex(tail, []byte(marker))
	if i < 0 {
		tw.w.Write(tail)
		return -1, d.fail(ctx, op, fmt.Errorf("%w before the command's exit status", ErrClosed))
	}
	if _, err := tw.w.Write(tail[:i]); err != nil {
		return -1, d.fail(ctx, op, fmt.Errorf("writing stdout: %w", err))
	}
	code, err := strconv.Atoi(string(bytes.TrimRight(tail[i+len(marker):], "\r\n")))
	if err != nil {
		return -1, d.fail(ctx, op, fmt.Errorf("reading the exit status: %q is not a number", tail[i+len(marker):]))
	}
	return code, nil
}

// tailWriter passes writes through, holding back the last keep bytes.
type tailWriter struct {
	w    io.Writer
	keep int
	hold []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.hold = append(t.hold, p...)
	if n := len(t.hold) - t.keep; n > 0 {
		if _, err := t.w.Write(t.hold[:n]); err != nil {
			return 0, err
		}
		t.hold = append(t.hold[:0], t.hold[n:]...)
	}
	return len(p), nil
}

// limitedBuffer collects up to max bytes and notes whether more came; with abort, the write that
// overflows fails, which stops the command.
type limitedBuffer struct {
	bytes.Buffer
	max   int
	over  bool
	abort bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		if b.abort {
			return max(room, 0), ErrOutputTooLarge
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
