package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
	"github.com/provkit/provkit/provision/sim/android"
)

// handler serves one opened stream.
type handler func(ctx context.Context, s *stream)

// service returns the handler for a service name, or nil (the OPEN is refused with CLSE).
// Recovery has no Android framework, so no abb (package manager) service; sideload (minadbd)
// serves only reboot and the sideload services (sideload.go).
func (d *Device) service(name string) handler {
	mode := d.Mode()
	if mode == ModeSideload && name != "reboot:" && !strings.HasPrefix(name, "reboot:") {
		return d.sideloadService(name)
	}
	if sh, ok, err := wire.ParseShellService(name); ok {
		if err != nil {
			return nil
		}
		return func(ctx context.Context, s *stream) { d.shell(ctx, s, sh) }
	}
	if args, exec, ok := wire.ParseAbbService(name); ok {
		if mode == ModeRecovery {
			return nil
		}
		return func(ctx context.Context, s *stream) { d.abb(ctx, s, args, exec) }
	}
	switch {
	case strings.HasPrefix(name, "exec:"):
		cmd := strings.TrimPrefix(name, "exec:")
		return func(ctx context.Context, s *stream) {
			w := s.buffered()
			d.Android.Run(ctx, cmd, s, w, w)
			w.Flush()
		}
	case name == "sync:":
		return func(ctx context.Context, s *stream) { d.sync(ctx, s) }
	case name == "reboot:" || strings.HasPrefix(name, "reboot:"):
		target := strings.TrimPrefix(name, "reboot:")
		return func(ctx context.Context, s *stream) {
			s.Close()
			time.Sleep(50 * time.Millisecond)
			d.Reboot(target)
		}
	case name == "root:":
		return func(ctx context.Context, s *stream) {
			io.WriteString(s, "adbd cannot run as root in production builds\n")
		}
	case name == "remount:":
		return func(ctx context.Context, s *stream) {
			io.WriteString(s, "remount is only available on userdebug builds\n")
		}
	}
	return nil
}

// shell serves shell: and shell,v2: streams.
func (d *Device) shell(ctx context.Context, s *stream, sh wire.ShellService) {
	if !sh.V2 {
		if sh.Command == "" {
			d.interactive(ctx, s, s, s)
			return
		}
		w := s.buffered()
		d.Android.Run(ctx, sh.Command, s, w, w)
		w.Flush()
		return
	}
	// shell v2: stdin arrives in packets; stdout, stderr and the exit status go out in packets.
	stdinR, stdinW := io.Pipe()
	go func() {
		r := wire.NewShellReader(s)
		defer stdinW.Close()
		for {
			id, data, err := r.ReadPacket()
			if err != nil {
				stdinW.CloseWithError(io.EOF)
				return
			}
			switch id {
			case wire.ShellStdin:
				if _, err := stdinW.Write(data); err != nil {
					// The command stopped reading; drain until the stream ends.
					continue
				}
			case wire.ShellCloseStdin:
				stdinW.Close()
			}
		}
	}()
	var code int
	if sh.Command == "" {
		// Interactive: every prompt and answer goes out at once.
		out := &shellPacketWriter{w: s, id: wire.ShellStdout}
		code = d.interactive(ctx, stdinR, out, out)
	} else {
		// A command's output is gathered into WRTEs of the negotiated max payload.
		bw := s.buffered()
		code = d.Android.Run(ctx, sh.Command, stdinR, &shellPacketWriter{w: bw, id: wire.ShellStdout}, &shellPacketWriter{w: bw, id: wire.ShellStderr})
		bw.Flush()
	}
	stdinR.Close()
	_ = wire.WriteShellPacket(s, wire.ShellExit, []byte{byte(code)})
}

// shellPacketWriter frames writes as shell v2 packets of one id, serialising writers.
type shellPacketWriter struct {
	w  io.Writer
	id wire.ShellID
}

func (w *shellPacketWriter) Write(p []byte) (int, error) {
	const max = 64 * 1024
	n := 0
	for len(p) > 0 {
		c := min(len(p), max)
		if err := wire.WriteShellPacket(w.w, w.id, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// interactive runs a minimal prompt-driven shell until "exit" or end of input.
func (d *Device) interactive(ctx context.Context, in io.Reader, out, errw io.Writer) int {
	prompt := d.Android.Prop("ro.product.device")
	if prompt == "" {
		prompt = d.cfg.Device
	}
	br := bufio.NewReader(in)
	code := 0
	sess := d.Android.NewSession() // one sh for the whole session: variables persist
	for {
		fmt.Fprintf(out, "%s:/ $ ", prompt)
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "exit" {
			return code
		}
		if line != "" {
			code = sess.Run(ctx, line, strings.NewReader(""), out, errw)
		}
		if err != nil {
			return code
		}
	}
}

// abb serves abb_exec: (raw stdin/stdout) and abb: (shell v2 framing): the binder shell commands
// of a service, here only "package".
func (d *Device) abb(ctx context.Context, s *stream, args []string, exec bool) {
	if len(args) == 0 || args[0] != "package" {
		msg := "abb: unknown service\n"
		if len(args) > 0 {
			msg = fmt.Sprintf("cmd: Can't find service: %s\n", args[0])
		}
		if exec {
			io.WriteString(s, msg)
		} else {
			_ = wire.WriteShellPacket(s, wire.ShellStderr, []byte(msg))
			_ = wire.WriteShellPacket(s, wire.ShellExit, []byte{20})
		}
		return
	}
	quoted := make([]string, 0, len(args)+1)
	quoted = append(quoted, "cmd")
	for _, a := range args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	line := strings.Join(quoted, " ")
	bw := s.buffered()
	defer bw.Flush()
	if exec {
		d.Android.Run(ctx, line, s, bw, bw)
		return
	}
	code := d.Android.Run(ctx, line, s, &shellPacketWriter{w: bw, id: wire.ShellStdout}, &shellPacketWriter{w: bw, id: wire.ShellStderr})
	_ = wire.WriteShellPacket(bw, wire.ShellExit, []byte{byte(code)})
}

// sync serves the file sync protocol against the device's file system.
func (d *Device) sync(ctx context.Context, s *stream) {
	r := wire.NewSyncReader(s)
	w := bufio.NewWriterSize(s, int(s.t.maxPayload))
	fsys := d.Android.FS()
	for {
		req, err := r.ReadRequest()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, errStreamClosed) {
				d.logf("sync: %v", err)
			}
			return
		}
		switch req.ID {
		case wire.SyncQUIT:
			return
		case wire.SyncSTAT:
			fi, err := fsys.Stat(req.Path)
			st := wire.StatV1{}
			if err == nil {
				st = wire.StatV1{Mode: fi.UnixMode(), Size: uint32(fi.Size), MTime: uint32(fi.MTime.Unix())}
			}
			err = wire.WriteStatV1(w, st)
		case wire.SyncSTA2, wire.SyncLST2:
			err = wire.WriteStatV2(w, req.ID, statV2(fsys, req.Path))
		case wire.SyncLIST, wire.SyncLIS2:
			err = listDir(w, fsys, req.Path, req.ID == wire.SyncLIS2)
		case wire.SyncSEND, wire.SyncSND2:
			err = d.receiveFile(r, w, req)
		case wire.SyncRECV, wire.SyncRCV2:
			err = d.sendFile(ctx, r, w, req)
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			d.logf("sync %s %q: %v", req.ID, req.Path, err)
			return
		}
	}
}

const (
	enoent = 2
	eacces = 13
)

func statV2(fsys *android.FS, p string) wire.StatV2 {
	fi, err := fsys.Stat(p)
	if err != nil {
		return wire.StatV2{Error: enoent}
	}
	return fileStatV2(fi)
}

func fileStatV2(fi android.FileInfo) wire.StatV2 {
	t := fi.MTime.Unix()
	nlink := uint32(1)
	if fi.Mode.IsDir() {
		nlink = 2
	}
	return wire.StatV2{Dev: 0xfd00, Ino: inode(fi.Path), Mode: fi.UnixMode(), Nlink: nlink, UID: 0, GID: 0,
		Size: uint64(fi.Size), ATime: t, MTime: t, CTime: t}
}

func inode(p string) uint64 {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(p); i++ {
		h = (h ^ uint64(p[i])) * 1099511628211
	}
	return h%1_000_000 + 1000
}

func listDir(w io.Writer, fsys *android.FS, dir string, v2 bool) error {
	entries, err := fsys.ReadDir(dir)
	if err == nil {
		for _, e := range entries {
			if v2 {
				err = wire.WriteDentV2(w, wire.DentV2{StatV2: fileStatV2(e), Name: e.Name()})
			} else {
				err = wire.WriteDent(w, wire.Dent{Mode: e.UnixMode(), Size: uint32(e.Size), MTime: uint32(e.MTime.Unix()), Name: e.Name()})
			}
			if err != nil {
				return err
			}
		}
	}
	return wire.WriteListDone(w, v2)
}

// maxPushSize bounds a file pushed into the simulated device's memory.
const maxPushSize = 2 << 30

// writablePath reports whether the adb shell user may create p by push.
func writablePath(p string) bool {
	p = android.Clean(p)
	for _, dir := range []string{"/data/local/tmp", "/sdcard", "/storage/emulated/0"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func (d *Device) receiveFile(r *wire.SyncReader, w *bufio.Writer, req wire.SyncRequest) error {
	p, mode := req.Path, uint32(0o644)
	if req.ID == wire.SyncSEND {
		var err error
		if p, mode, err = wire.ParseSendV1Path(req.Path); err != nil {
			return err
		}
	} else {
		m, flags, err := r.ReadSendV2Setup()
		if err != nil {
			return err
		}
		mode = m
		if flags&^wire.SyncFlagDryRun != 0 {
			return wire.WriteFail(w, "compression is not supported by this device")
		}
	}
	var buf []byte
	tooBig := false
	var mtime uint32
	for {
		c, err := r.ReadChunk()
		if err != nil {
			return err
		}
		if c.Done {
			mtime = c.MTime
			break
		}
		if int64(len(buf))+int64(len(c.Data)) > maxPushSize {
			tooBig = true
			continue
		}
		buf = append(buf, c.Data...)
	}
	switch {
	case tooBig:
		return wire.WriteFail(w, fmt.Sprintf("file too large for the simulated device (max %d bytes)", maxPushSize))
	case !writablePath(p):
		return wire.WriteFail(w, fmt.Sprintf("couldn't create file: %s", "Permission denied"))
	}
	if err := d.Android.FS().WriteFile(p, buf, fs.FileMode(mode&0o777), time.Unix(int64(mtime), 0)); err != nil {
		return wire.WriteFail(w, fmt.Sprintf("couldn't create file: %v", err))
	}
	return wire.WriteOkay(w)
}

func (d *Device) sendFile(ctx context.Context, r *wire.SyncReader, w *bufio.Writer, req wire.SyncRequest) error {
	if req.ID == wire.SyncRCV2 {
		flags, err := r.ReadRecvV2Setup()
		if err != nil {
			return err
		}
		if flags != 0 {
			return wire.WriteFail(w, "compression is not supported by this device")
		}
	}
	f, _, err := d.Android.FS().Open(req.Path)
	if err != nil {
		msg := "No such file or directory"
		if errors.Is(err, android.ErrIsDir) {
			msg = "Is a directory"
		}
		return wire.WriteFail(w, "open failed: "+msg)
	}
	defer f.Close()
	buf := make([]byte, wire.SyncDataMax)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if werr := wire.WriteData(w, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return wire.WriteFail(w, "read failed: "+err.Error())
		}
	}
	return wire.WriteDone(w, 0)
}
