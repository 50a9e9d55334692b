package adb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

// InstallMethod says how an APK reaches the package manager.
type InstallMethod string

// Install methods, from the newest to the oldest devices.
const (
	InstallAuto InstallMethod = ""         // choose by the device's features
	InstallAbb  InstallMethod = "abb_exec" // Android 11+: stream to the package service through abb_exec
	InstallCmd  InstallMethod = "cmd"      // Android 7+: stream to "cmd package install -S"
	InstallPush InstallMethod = "push"     // any: push to /data/local/tmp, then "pm install"
)

// InstallOptions are the package manager flags of an install.
type InstallOptions struct {
	Replace          bool     // -r: replace an installed app, keeping its data
	AllowDowngrade   bool     // -d
	GrantPermissions bool     // -g: grant every runtime permission in the manifest
	AllowTest        bool     // -t
	User             string   // --user <id>
	Args             []string // more flags, passed as they are
	Method           InstallMethod
}

func (o InstallOptions) flags() []string {
	var f []string
	if o.Replace {
		f = append(f, "-r")
	}
	if o.AllowDowngrade {
		f = append(f, "-d")
	}
	if o.GrantPermissions {
		f = append(f, "-g")
	}
	if o.AllowTest {
		f = append(f, "-t")
	}
	if o.User != "" {
		f = append(f, "--user", o.User)
	}
	return append(f, o.Args...)
}

// maxInstallOutput bounds the package manager's answer.
const maxInstallOutput = 1 << 20

// Install installs the APK (size bytes read through apk) and returns the method used. A refusal by
// the package manager is an *InstallError (errors.As) with its INSTALL_FAILED_... code.
func (d *Device) Install(ctx context.Context, apk io.ReaderAt, size int64, opts InstallOptions) (InstallMethod, error) {
	method := opts.Method
	if method == InstallAuto {
		f, err := d.Features(ctx)
		if err != nil {
			return "", err
		}
		switch {
		case f.Has(FeatureAbbExec):
			method = InstallAbb
		case f.Has(FeatureCmd):
			method = InstallCmd
		default:
			method = InstallPush
		}
	}
	op := fmt.Sprintf("installing a %d-byte APK (%s)", size, method)
	var out []byte
	var err error
	switch method {
	case InstallAbb:
		args := append(append([]string{"package", "install"}, opts.flags()...), "-S", strconv.FormatInt(size, 10))
		out, err = d.streamInstall(ctx, op, wire.AbbExecServiceName(args...), apk, size)
	case InstallCmd:
		args := append(append([]string{"cmd", "package", "install"}, opts.flags()...), "-S", strconv.FormatInt(size, 10))
		out, err = d.streamInstall(ctx, op, "exec:"+Quote(args...), apk, size)
	case InstallPush:
		out, err = d.pushInstall(ctx, op, apk, size, opts)
	default:
		return "", &DeviceError{Op: "installing", Serial: d.Serial(), Err: fmt.Errorf("unknown install method %q", method)}
	}
	if err != nil {
		return method, err
	}
	if err := ParseInstallOutput(string(out)); err != nil {
		return method, &DeviceError{Op: op, Serial: d.Serial(), State: StateDevice, Err: err}
	}
	return method, nil
}

// InstallFile installs the APK at path.
func (d *Device) InstallFile(ctx context.Context, path string, opts InstallOptions) (InstallMethod, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return "", fmt.Errorf("installing %s on %s: %w", path, d.Serial(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("installing %s on %s: %w", path, d.Serial(), err)
	}
	m, err := d.Install(ctx, f, st.Size(), opts)
	if err != nil {
		return m, fmt.Errorf("installing %s: %w", path, err)
	}
	return m, nil
}

// streamInstall sends the APK into a service that knows its size (-S) and reads the verdict.
func (d *Device) streamInstall(ctx context.Context, op, service string, apk io.ReaderAt, size int64) ([]byte, error) {
	s, err := d.open(ctx, op, service)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// The package manager may refuse early and close; its answer matters more than the write error.
	werr := make(chan error, 1)
	go func() {
		_, err := io.Copy(s, io.NewSectionReader(apk, 0, size))
		werr <- err
	}()
	var out limitedBuffer
	out.max = maxInstallOutput
	_, rerr := io.Copy(&out, s)
	if rerr != nil {
		return nil, d.fail(ctx, op, fmt.Errorf("reading the package manager's answer: %w", rerr))
	}
	if err := <-werr; err != nil && !bytes.Contains(out.Bytes(), []byte("Failure")) {
		return nil, d.fail(ctx, op, fmt.Errorf("sending the APK: %w", err))
	}
	return out.Bytes(), nil
}

// pushInstall pushes the APK to /data/local/tmp, runs pm install on it and removes it.
func (d *Device) pushInstall(ctx context.Context, op string, apk io.ReaderAt, size int64, opts InstallOptions) ([]byte, error) {
	var nonce [6]byte
	rand.Read(nonce[:])
	remote := "/data/local/tmp/provkit-" + hex.EncodeToString(nonce[:]) + ".apk"
	if _, err := d.Push(ctx, io.NewSectionReader(apk, 0, size), remote, 0o644, time.Now()); err != nil {
		return nil, err
	}
	defer func() {
		// Remove the copy even when ctx has ended, but do not wait long.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		d.Shell(cctx, Quote("rm", "-f", remote))
	}()
	args := append(append([]string{"pm", "install"}, opts.flags()...), remote)
	r, err := d.Shell(ctx, Quote(args...))
	if err != nil {
		return nil, err
	}
	// pm prints Failure on stdout or stderr depending on the release.
	out := append(append([]byte(nil), r.Stdout...), r.Stderr...)
	if r.ExitCode != 0 && !strings.Contains(string(out), "Failure") {
		return nil, &DeviceError{Op: op, Serial: d.Serial(), State: StateDevice, Err: r.exitErr()}
	}
	return out, nil
}
