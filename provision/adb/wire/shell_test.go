package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestShellPackets(t *testing.T) {
	var b bytes.Buffer
	for _, p := range []struct {
		id   ShellID
		data string
	}{{ShellStdout, "Pixel 7\n"}, {ShellStderr, "oops\n"}, {ShellStdin, ""}, {ShellCloseStdin, ""}, {ShellWindowSize, "24x80,0x0\x00"}, {ShellExit, "\x7f"}} {
		if err := WriteShellPacket(&b, p.id, []byte(p.data)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Bytes()[:5]; !bytes.Equal(got, []byte{1, 8, 0, 0, 0}) {
		t.Fatalf("header % x", got)
	}
	r := NewShellReader(&b)
	var ids []ShellID
	var last []byte
	for {
		id, data, err := r.ReadPacket()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		last = append([]byte(nil), data...)
	}
	if len(ids) != 6 || ids[5] != ShellExit || last[0] != 127 {
		t.Fatalf("ids %v last %v", ids, last)
	}
}

func TestShellReaderErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"exit without status": {3, 0, 0, 0, 0},
		"exit with two bytes": {3, 2, 0, 0, 0, 1, 2},
		"huge":                {1, 0xff, 0xff, 0xff, 0x7f},
	} {
		if _, _, err := NewShellReader(bytes.NewReader(in)).ReadPacket(); !errors.Is(err, ErrShellProtocol) {
			t.Errorf("%s: got %v, want ErrShellProtocol", name, err)
		}
	}
	if _, _, err := NewShellReader(bytes.NewReader([]byte{1, 5, 0, 0, 0, 'a'})).ReadPacket(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
}

func TestParseShellService(t *testing.T) {
	tests := []struct {
		in   string
		want ShellService
	}{
		{"shell,v2,raw:getprop ro.build.fingerprint", ShellService{V2: true, Raw: true, Command: "getprop ro.build.fingerprint"}},
		{"shell:ls -l /", ShellService{Command: "ls -l /"}},
		{"shell,v2,TERM=xterm-256color,pty:", ShellService{V2: true, PTY: true, Term: "xterm-256color"}},
		{"shell:", ShellService{PTY: true}},
	}
	for _, tt := range tests {
		got, ok, err := ParseShellService(tt.in)
		if err != nil || !ok || got.V2 != tt.want.V2 || got.Raw != tt.want.Raw || got.PTY != tt.want.PTY || got.Term != tt.want.Term || got.Command != tt.want.Command {
			t.Errorf("%q: got %+v %v %v", tt.in, got, ok, err)
		}
	}
	if _, ok, _ := ParseShellService("sync:"); ok {
		t.Error("sync: parsed as shell")
	}
	if _, ok, _ := ParseShellService("shellfish:"); ok {
		t.Error("shellfish: parsed as shell")
	}
	args, exec, ok := ParseAbbService(AbbExecServiceName("package", "install", "-S", "123"))
	if !ok || !exec || len(args) != 4 || args[3] != "123" {
		t.Errorf("abb_exec: %v %v %v", args, exec, ok)
	}
}

func FuzzShellReader(f *testing.F) {
	f.Add(AppendShellPacket(AppendShellPacket(nil, ShellStdout, []byte("x")), ShellExit, []byte{0}))
	f.Add([]byte{2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewShellReader(bytes.NewReader(in))
		r.MaxData = 1024
		var out []byte
		for range 64 {
			id, data, err := r.ReadPacket()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrShellProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unclassified error: %v", err)
				}
				break
			}
			if len(data) > 1024 || (id == ShellExit && len(data) != 1) {
				t.Fatalf("packet %s of %d bytes accepted", id, len(data))
			}
			out = AppendShellPacket(out, id, data)
		}
		// What was decoded re-encodes to a prefix of the input.
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("re-encoding is not a prefix of the input")
		}
	})
}
