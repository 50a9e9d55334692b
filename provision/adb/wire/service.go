package wire

import (
	"fmt"
	"strings"
)

// ShellService is a parsed "shell[,arg...]:command" service name. Args are v2 (use the shell v2
// framing), raw or pty (terminal mode), TERM=<value>.
type ShellService struct {
	V2      bool
	PTY     bool // a terminal was asked for ("pty"), or implied by an empty command without "raw"
	Raw     bool
	Term    string
	Command string // empty: an interactive shell
	Args    []string
}

// ShellServiceName returns the service name a host opens to run command: "shell,v2,raw:command" with
// v2, "shell:command" without.
func ShellServiceName(v2 bool, command string) string {
	if v2 {
		return "shell,v2,raw:" + command
	}
	return "shell:" + command
}

// ParseShellService parses a service name starting with "shell". It reports ok=false when service is
// not a shell service at all.
func ParseShellService(service string) (ShellService, bool, error) {
	if !strings.HasPrefix(service, "shell") {
		return ShellService{}, false, nil
	}
	rest := service[len("shell"):]
	var s ShellService
	switch {
	case strings.HasPrefix(rest, ":"):
		s.Command = rest[1:]
	case strings.HasPrefix(rest, ","):
		args, cmd, ok := strings.Cut(rest[1:], ":")
		if !ok {
			return ShellService{}, true, fmt.Errorf("parsing shell service %q: no ':' after the arguments", service)
		}
		s.Command = cmd
		for _, a := range strings.Split(args, ",") {
			switch {
			case a == "v2":
				s.V2 = true
			case a == "raw":
				s.Raw = true
			case a == "pty":
				s.PTY = true
			case strings.HasPrefix(a, "TERM="):
				s.Term = strings.TrimPrefix(a, "TERM=")
			case a == "":
			default:
				s.Args = append(s.Args, a)
			}
		}
	default:
		return ShellService{}, false, nil
	}
	if !s.Raw && !s.PTY && s.Command == "" {
		s.PTY = true
	}
	return s, true, nil
}

// AbbExecServiceName returns the service name for an abb_exec call: "abb_exec:" and the arguments
// separated by NUL bytes (adb's send_abb_exec_command).
func AbbExecServiceName(args ...string) string { return "abb_exec:" + strings.Join(args, "\x00") }

// ParseAbbService splits an "abb:" or "abb_exec:" service name into its arguments. ok is false when
// service is neither.
func ParseAbbService(service string) (args []string, exec bool, ok bool) {
	switch {
	case strings.HasPrefix(service, "abb_exec:"):
		return strings.Split(service[len("abb_exec:"):], "\x00"), true, true
	case strings.HasPrefix(service, "abb:"):
		return strings.Split(service[len("abb:"):], "\x00"), false, true
	}
	return nil, false, false
}
