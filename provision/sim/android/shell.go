package android

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxCommandLine bounds a shell command line.
const MaxCommandLine = 64 * 1024

// builtin is one shell command. It returns the exit status.
type builtin func(ctx context.Context, sh *shell, args []string, stdin io.Reader, stdout, stderr io.Writer) int

type shell struct {
	d       *Device
	lastRet int
	vars    map[string]string // shell variables set by NAME=value
}

// Session is one shell process: variables set by one line stay for the next (an interactive
// "adb shell").
type Session struct{ sh *shell }

// NewSession starts a shell on the device.
func (d *Device) NewSession() *Session { return &Session{sh: &shell{d: d, vars: map[string]string{}}} }

// Run executes a command line in the session; see Device.Run.
func (s *Session) Run(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(line) > MaxCommandLine {
		fmt.Fprintf(stderr, "/system/bin/sh: command line too long\n")
		return 2
	}
	return s.sh.runLine(ctx, line, stdin, stdout, stderr)
}

// Run executes a shell command line as `adb shell` does on the device (as the shell user) and
// returns its exit status. It understands ;, &&, ||, pipes, single and double quotes, backslash
// escapes, the redirections > >> 2> 2>&1 (to device files or /dev/null), NAME=value assignments
// and the expansions $NAME, ${NAME} and $?. What it does not understand (command substitution,
// positional parameters, ${NAME:-word} and the like) fails with exit status 127 rather than
// giving an answer a phone would not give.
func (d *Device) Run(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	return d.NewSession().Run(ctx, line, stdin, stdout, stderr)
}

// shellEnv is the environment adbd gives the shell user's sh (shell_service's HOME, USER,
// LOGNAME, SHELL, TMPDIR; init.environ.rc's ANDROID_* and EXTERNAL_STORAGE) as far as it is the
// same on every release the simulator models.
var shellEnv = map[string]string{
	"HOME": "/", "USER": "shell", "LOGNAME": "shell", "SHELL": "/system/bin/sh", "TMPDIR": "/data/local/tmp",
	"PWD": "/", "ANDROID_ROOT": "/system", "ANDROID_DATA": "/data", "ANDROID_STORAGE": "/storage",
	"EXTERNAL_STORAGE": "/sdcard", "ASEC_MOUNTPOINT": "/mnt/asec",
}

// varMark brackets a variable reference inside a word until the command runs (NUL cannot occur
// in a command line: adbd reads it as a C string).
const varMark = "\x00"

type token struct {
	s  string
	op bool // an unquoted operator: ; && || |
	// quoted: part of the word was quoted (an empty expansion still leaves an argument).
	quoted bool
	// assign: the word starts with an unquoted NAME=.
	assign bool
}

// errUnsupported is shell syntax the simulator does not implement.
type errUnsupported string

func (e errUnsupported) Error() string { return string(e) }

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }

// dollar reads the expansion at line[i] == '$' and returns what to put in the word and how many
// bytes it used.
func dollar(line string, i int) (string, int, error) {
	if i+1 >= len(line) {
		return "$", 1, nil
	}
	c := line[i+1]
	switch {
	case c == '?':
		return varMark + "?" + varMark, 2, nil
	case c == '{':
		end := strings.IndexByte(line[i+2:], '}')
		if end < 0 {
			return "", 0, errors.New("syntax error: missing }")
		}
		name := line[i+2 : i+2+end]
		if name == "?" || name != "" && isNameStart(name[0]) && strings.IndexFunc(name, func(r rune) bool { return r > 127 || !isNameChar(byte(r)) }) < 0 {
			return varMark + name + varMark, end + 3, nil
		}
		return "", 0, errUnsupported("${" + name + "}")
	case isNameStart(c):
		j := i + 1
		for j < len(line) && isNameChar(line[j]) {
			j++
		}
		return varMark + line[i+1:j] + varMark, j - i, nil
	case c == '(' || strings.IndexByte("0123456789#@*!$-", c) >= 0:
		return "", 0, errUnsupported("$" + string(c))
	}
	return "$", 1, nil
}

// tokenize splits a command line into words and operators.
func tokenize(line string) ([]token, error) {
	line = strings.ReplaceAll(line, varMark, "")
	var toks []token
	var cur strings.Builder
	inWord, quoted, plain := false, false, true
	flush := func() {
		if inWord {
			w := cur.String()
			eq := strings.IndexByte(w, '=')
			assign := plain && eq > 0 && isNameStart(w[0]) && strings.IndexFunc(w[:eq], func(r rune) bool { return r > 127 || !isNameChar(byte(r)) }) < 0
			toks = append(toks, token{s: w, quoted: quoted, assign: assign})
			cur.Reset()
		}
		inWord, quoted, plain = false, false, true
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("syntax error: unterminated quoted string")
			}
			if !strings.Contains(cur.String(), "=") {
				plain = false
			}
			cur.WriteString(line[i+1 : i+1+j])
			inWord, quoted = true, true
			i += j + 1
		case c == '`':
			return nil, errUnsupported("`...`")
		case c == '$':
			s, n, err := dollar(line, i)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(cur.String(), "=") {
				plain = false
			}
			cur.WriteString(s)
			inWord = true
			i += n - 1
		case c == '"':
			if !strings.Contains(cur.String(), "=") {
				plain = false
			}
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
					cur.WriteByte(line[i])
					continue
				}
				if line[i] == '`' {
					return nil, errUnsupported("`...`")
				}
				if line[i] == '$' {
					s, n, err := dollar(line, i)
					if err != nil {
						return nil, err
					}
					cur.WriteString(s)
					i += n - 1
					continue
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("syntax error: unterminated quoted string")
			}
			inWord, quoted = true, true
		case c == '\\' && i+1 < len(line):
			i++
			if line[i] != '\n' {
				if !strings.Contains(cur.String(), "=") {
					plain = false
				}
				cur.WriteByte(line[i])
				inWord, quoted = true, true
			}
		case c == ' ' || c == '\t':
			flush()
		case c == ';' || c == '\n':
			flush()
			toks = append(toks, token{s: ";", op: true})
		case c == '&' && i+1 < len(line) && line[i+1] == '&':
			flush()
			toks = append(toks, token{s: "&&", op: true})
			i++
		case c == '|' && i+1 < len(line) && line[i+1] == '|':
			flush()
			toks = append(toks, token{s: "||", op: true})
			i++
		case c == '|':
			flush()
			toks = append(toks, token{s: "|", op: true})
		case c == '>' || (c == '2' && !inWord && i+1 < len(line) && line[i+1] == '>'):
			flush()
			j := i
			if c == '2' {
				j++
			}
			op := line[i : j+1]
			if j+1 < len(line) && line[j+1] == '>' {
				op += ">"
				j++
			}
			if j+2 < len(line) && line[j+1] == '&' && line[j+2] == '1' {
				op += "&1"
				j += 2
			}
			toks = append(toks, token{s: op, op: true})
			i = j
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks, nil
}

type simpleCmd struct {
	args     []string
	assigns  map[string]string // NAME=value words before the command
	outFile  string
	outApp   bool
	errNull  bool
	errToOut bool
}

func (sh *shell) runLine(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) int {
	toks, err := tokenize(line)
	var unsup errUnsupported
	if errors.As(err, &unsup) {
		// Not an answer a phone would not give: the simulator says it cannot run this.
		fmt.Fprintf(stderr, "/system/bin/sh: %s: inaccessible or not found (not supported by the provkit simulator)\n", unsup)
		return 127
	}
	if err != nil {
		fmt.Fprintf(stderr, "/system/bin/sh: %v\n", err)
		return 1
	}
	// Split into pipelines joined by ; && ||.
	ret := 0
	next := ";"
	var pipeline [][]token
	var cmd []token
	run := func() error {
		if len(cmd) > 0 || len(pipeline) > 0 {
			pipeline = append(pipeline, cmd)
		}
		if len(pipeline) == 0 {
			return nil
		}
		if next == ";" || (next == "&&" && ret == 0) || (next == "||" && ret != 0) {
			ret = sh.runPipeline(ctx, pipeline, stdin, stdout, stderr)
			sh.lastRet = ret
		}
		pipeline, cmd = nil, nil
		return ctx.Err()
	}
	for _, t := range toks {
		if t.op && (t.s == ";" || t.s == "&&" || t.s == "||") {
			if err := run(); err != nil {
				return 130
			}
			next = t.s
			continue
		}
		if t.op && t.s == "|" {
			pipeline = append(pipeline, cmd)
			cmd = nil
			continue
		}
		cmd = append(cmd, t)
	}
	if err := run(); err != nil {
		return 130
	}
	return ret
}

// expand replaces the variable references in word w. An unquoted word is split into fields at
// white space, and vanishes when it expands to nothing, as in sh.
func (sh *shell) expand(w token) ([]string, error) {
	if !strings.Contains(w.s, varMark) {
		return []string{w.s}, nil
	}
	parts := strings.Split(w.s, varMark)
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, err := sh.lookup(p)
		if err != nil {
			return nil, err
		}
		b.WriteString(v)
	}
	if w.quoted {
		return []string{b.String()}, nil
	}
	return strings.Fields(b.String()), nil
}

// lookup is the value of $name. A name that looks like an environment variable the simulator
// does not model (upper case, unset) is refused rather than expanded to nothing, since a phone
// may well have it set.
func (sh *shell) lookup(name string) (string, error) {
	if name == "?" {
		return strconv.Itoa(sh.lastRet), nil
	}
	if v, ok := sh.vars[name]; ok {
		return v, nil
	}
	if v, ok := shellEnv[name]; ok {
		return v, nil
	}
	if strings.ToUpper(name) == name {
		return "", errUnsupported("$" + name)
	}
	return "", nil
}

func (sh *shell) parseSimple(toks []token) (simpleCmd, error) {
	var c simpleCmd
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if !t.op {
			if t.assign && len(c.args) == 0 {
				name, val, _ := strings.Cut(t.s, "=")
				v, err := sh.expand(token{s: val, quoted: true})
				if err != nil {
					return c, err
				}
				if c.assigns == nil {
					c.assigns = map[string]string{}
				}
				c.assigns[name] = v[0]
				continue
			}
			words, err := sh.expand(t)
			if err != nil {
				return c, err
			}
			c.args = append(c.args, words...)
			continue
		}
		switch t.s {
		case "2>&1":
			c.errToOut = true
			continue
		case ">&1":
			continue
		}
		if i+1 >= len(toks) || toks[i+1].op {
			return c, fmt.Errorf("syntax error: '%s' unexpected", t.s)
		}
		tw, err := sh.expand(toks[i+1])
		if err != nil {
			return c, err
		}
		if len(tw) != 1 {
			return c, fmt.Errorf("%s: ambiguous redirect", toks[i+1].s)
		}
		target := tw[0]
		i++
		switch t.s {
		case ">", ">>":
			c.outFile, c.outApp = target, t.s == ">>"
		case "2>", "2>>":
			c.errNull = target == "/dev/null"
		}
	}
	return c, nil
}

func (sh *shell) runPipeline(ctx context.Context, pipeline [][]token, stdin io.Reader, stdout, stderr io.Writer) int {
	in := stdin
	ret := 0
	for i, toks := range pipeline {
		c, err := sh.parseSimple(toks)
		var unsup errUnsupported
		if errors.As(err, &unsup) {
			fmt.Fprintf(stderr, "/system/bin/sh: %s: inaccessible or not found (not supported by the provkit simulator)\n", unsup)
			return 127
		}
		if err != nil {
			fmt.Fprintf(stderr, "/system/bin/sh: %v\n", err)
			return 1
		}
		if len(c.args) == 0 && len(c.assigns) > 0 && len(pipeline) == 1 {
			// NAME=value alone sets a shell variable (before a command it would only be that
			// command's environment, which no simulated command reads).
			for k, v := range c.assigns {
				sh.vars[k] = v
			}
		}
		var out io.Writer = stdout
		var buf bytes.Buffer
		if i < len(pipeline)-1 {
			out = &buf
		}
		var fileBuf bytes.Buffer
		if c.outFile != "" && c.outFile != "/dev/null" {
			out = &fileBuf
		} else if c.outFile == "/dev/null" {
			out = io.Discard
		}
		errw := stderr
		if c.errNull {
			errw = io.Discard
		} else if c.errToOut {
			errw = out
		}
		ret = sh.exec(ctx, c.args, in, out, errw)
		if c.outFile != "" && c.outFile != "/dev/null" {
			data := fileBuf.Bytes()
			if c.outApp {
				if old, err := sh.d.fs.ReadFile(c.outFile); err == nil {
					data = append(old, data...)
				}
			}
			if err := sh.writable(c.outFile); err != nil {
				fmt.Fprintf(stderr, "/system/bin/sh: can't create %s: %v\n", c.outFile, err)
				return 1
			}
			if err := sh.d.fs.WriteFile(c.outFile, data, 0o644, time.Now()); err != nil {
				fmt.Fprintf(stderr, "/system/bin/sh: can't create %s: %v\n", c.outFile, err)
				return 1
			}
		}
		in = bytes.NewReader(buf.Bytes())
	}
	return ret
}

// writable reports whether the shell user may write p: only under /data/local/tmp and /sdcard.
func (sh *shell) writable(p string) error {
	p = Clean(p)
	for _, dir := range []string{"/data/local/tmp", "/sdcard", "/storage/emulated/0"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return nil
		}
	}
	return errors.New("Permission denied")
}

func (sh *shell) exec(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return 0
	}
	name := args[0]
	if strings.HasPrefix(name, "/system/bin/") || strings.HasPrefix(name, "/system/xbin/") {
		name = path.Base(name)
	}
	b, ok := builtins[name]
	if !ok || frameworkCommands[name] && sh.d.InRecovery() {
		fmt.Fprint(stderr, NotFound(args[0]))
		return 127
	}
	return b(ctx, sh, args[1:], stdin, stdout, stderr)
}

var builtins map[string]builtin

func init() {
	builtins = map[string]builtin{
		"getprop": cmdGetprop,
		"pm":      cmdPm,
		"cmd":     cmdCmd,
		"dumpsys": cmdDumpsys,
		"sha256sum": func(ctx context.Context, sh *shell, a []string, in io.Reader, o, e io.Writer) int {
			return sh.sum(a, sha256.New, "sha256sum", in, o, e)
		},
		"md5sum": func(ctx context.Context, sh *shell, a []string, in io.Reader, o, e io.Writer) int {
			return sh.sum(a, md5.New, "md5sum", in, o, e)
		},
		"ls":       cmdLs,
		"cat":      cmdCat,
		"settings": cmdSettings,
		"id":       func(context.Context, *shell, []string, io.Reader, io.Writer, io.Writer) int { return 0 },
		"echo":     cmdEcho,
		"which":    cmdWhich,
		"rm":       cmdRm,
		"mkdir":    cmdMkdir,
		"true":     func(context.Context, *shell, []string, io.Reader, io.Writer, io.Writer) int { return 0 },
		"false":    func(context.Context, *shell, []string, io.Reader, io.Writer, io.Writer) int { return 1 },
		"exit":     cmdExit,
		"grep":     cmdGrep,
		"head":     cmdHead,
		"wc":       cmdWc,
		"sleep":    cmdSleep,
		"reboot":   cmdReboot,
		"whoami": func(_ context.Context, _ *shell, _ []string, _ io.Reader, o, _ io.Writer) int {
			fmt.Fprintln(o, "shell")
			return 0
		},
		"uname": func(_ context.Context, _ *shell, _ []string, _ io.Reader, o, _ io.Writer) int {
			fmt.Fprintln(o, "Linux")
			return 0
		},
	}
	builtins["id"] = func(_ context.Context, _ *shell, _ []string, _ io.Reader, o, _ io.Writer) int {
		fmt.Fprintln(o, ShellID)
		return 0
	}
}

func cmdGetprop(_ context.Context, sh *shell, args []string, _ io.Reader, out, _ io.Writer) int {
	recovery := sh.d.InRecovery()
	if len(args) == 0 {
		props := sh.d.Props()
		if recovery {
			props = slices.DeleteFunc(props, func(p Prop) bool { return bootProps[p.Name] })
		}
		GetpropAll(out, props)
		return 0
	}
	v := sh.d.Prop(args[0])
	if recovery && bootProps[args[0]] {
		v = ""
	}
	if v == "" && len(args) > 1 {
		v = args[1]
	}
	fmt.Fprintln(out, v)
	return 0
}

func cmdEcho(_ context.Context, _ *shell, args []string, _ io.Reader, out, _ io.Writer) int {
	nl := true
	if len(args) > 0 && args[0] == "-n" {
		nl, args = false, args[1:]
	}
	fmt.Fprint(out, strings.Join(args, " "))
	if nl {
		fmt.Fprintln(out)
	}
	return 0
}

func cmdExit(_ context.Context, sh *shell, args []string, _ io.Reader, _, _ io.Writer) int {
	if len(args) > 0 {
		n, _ := strconv.Atoi(args[0])
		return n & 0xff
	}
	return sh.lastRet
}

func cmdWhich(_ context.Context, sh *shell, args []string, _ io.Reader, out, _ io.Writer) int {
	ret := 0
	for _, a := range args {
		if _, ok := builtins[a]; ok && a != "exit" && a != "true" && a != "false" && !(frameworkCommands[a] && sh.d.InRecovery()) {
			fmt.Fprintf(out, "/system/bin/%s\n", a)
		} else {
			ret = 1
		}
	}
	return ret
}

func cmdSleep(ctx context.Context, _ *shell, args []string, _ io.Reader, _, _ io.Writer) int {
	if len(args) == 0 {
		return 1
	}
	f, err := strconv.ParseFloat(args[0], 64)
	if err != nil || f < 0 {
		return 1
	}
	t := time.NewTimer(min(time.Duration(f*float64(time.Second)), time.Minute))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 130
	case <-t.C:
		return 0
	}
}

func cmdReboot(_ context.Context, sh *shell, args []string, _ io.Reader, _, stderr io.Writer) int {
	if sh.d.OnReboot == nil {
		fmt.Fprintln(stderr, "reboot: Operation not permitted")
		return 1
	}
	target := ""
	if len(args) > 0 {
		target = args[0]
	}
	sh.d.OnReboot(target)
	return 0
}

func fsErr(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, ErrIsDir):
		return "Is a directory"
	case errors.Is(err, ErrNotDir):
		return "Not a directory"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (sh *shell) sum(args []string, newHash func() hash.Hash, name string, stdin io.Reader, out, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"-"}
	}
	ret := 0
	for _, a := range args {
		h := newHash()
		if a == "-" {
			io.Copy(h, stdin)
		} else {
			r, _, err := sh.d.fs.Open(a)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %s: %s\n", name, a, fsErr(err))
				ret = 1
				continue
			}
			_, err = io.Copy(h, r)
			r.Close()
			if err != nil {
				fmt.Fprintf(stderr, "%s: %s: %v\n", name, a, err)
				ret = 1
				continue
			}
		}
		fmt.Fprintf(out, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), a)
	}
	return ret
}

func cmdCat(_ context.Context, sh *shell, args []string, stdin io.Reader, out, stderr io.Writer) int {
	if len(args) == 0 {
		io.Copy(out, stdin)
		return 0
	}
	ret := 0
	for _, a := range args {
		r, _, err := sh.d.fs.Open(a)
		if err != nil {
			fmt.Fprintf(stderr, "cat: %s: %s\n", a, fsErr(err))
			ret = 1
			continue
		}
		io.Copy(out, r)
		r.Close()
	}
	return ret
}

func cmdLs(_ context.Context, sh *shell, args []string, _ io.Reader, out, stderr io.Writer) int {
	long, dirOnly := false, false
	var paths []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			long = long || strings.Contains(a, "l")
			dirOnly = dirOnly || strings.Contains(a, "d")
			continue
		}
		paths = append(paths, a)
	}
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	ret := 0
	for i, p := range paths {
		fi, err := sh.d.fs.Stat(p)
		if err != nil {
			fmt.Fprintf(stderr, "ls: %s: %s\n", p, fsErr(err))
			ret = 1
			continue
		}
		if !fi.Mode.IsDir() || dirOnly {
			if long {
				line := LsLong(fi)
				fmt.Fprintln(out, strings.TrimSuffix(line, fi.Name())+p)
			} else {
				fmt.Fprintln(out, p)
			}
			continue
		}
		entries, _ := sh.d.fs.ReadDir(p)
		if len(paths) > 1 {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "%s:\n", p)
		}
		if long {
			var blocks int64
			for _, e := range entries {
				blocks += (e.Size + 4095) / 4096 * 4
			}
			fmt.Fprintf(out, "total %d\n", blocks)
		}
		for _, e := range entries {
			if long {
				fmt.Fprintln(out, LsLong(e))
			} else {
				fmt.Fprintln(out, e.Name())
			}
		}
	}
	return ret
}

func cmdRm(_ context.Context, sh *shell, args []string, _ io.Reader, _, stderr io.Writer) int {
	force, rec := false, false
	ret := 0
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			force = force || strings.Contains(a, "f")
			rec = rec || strings.ContainsAny(a, "rR")
			continue
		}
		if err := sh.writable(a); err != nil {
			fmt.Fprintf(stderr, "rm: %s: %v\n", a, err)
			ret = 1
			continue
		}
		if err := sh.d.fs.Remove(a, rec); err != nil {
			if force && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			fmt.Fprintf(stderr, "rm: %s: %s\n", a, fsErr(err))
			ret = 1
		}
	}
	return ret
}

func cmdMkdir(_ context.Context, sh *shell, args []string, _ io.Reader, _, stderr io.Writer) int {
	ret := 0
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if err := sh.writable(a); err != nil {
			fmt.Fprintf(stderr, "mkdir: '%s': %v\n", a, err)
			ret = 1
			continue
		}
		if err := sh.d.fs.MkdirAll(a); err != nil {
			fmt.Fprintf(stderr, "mkdir: '%s': %s\n", a, fsErr(err))
			ret = 1
		}
	}
	return ret
}

func cmdGrep(_ context.Context, _ *shell, args []string, stdin io.Reader, out, stderr io.Writer) int {
	quiet, invert, count, fixed, icase := false, false, false, false, false
	var pattern *string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && len(a) > 1 && pattern == nil {
			quiet = quiet || strings.Contains(a, "q")
			invert = invert || strings.Contains(a, "v")
			count = count || strings.Contains(a, "c")
			fixed = fixed || strings.Contains(a, "F")
			icase = icase || strings.Contains(a, "i")
			continue
		}
		if pattern == nil {
			p := a
			pattern = &p
		}
	}
	_ = fixed
	if pattern == nil {
		fmt.Fprintln(stderr, "usage: grep [-cFiqv] PATTERN")
		return 2
	}
	pat := *pattern
	if icase {
		pat = strings.ToLower(pat)
	}
	n := 0
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		hay := line
		if icase {
			hay = strings.ToLower(hay)
		}
		if strings.Contains(hay, pat) != invert {
			n++
			if !quiet && !count {
				fmt.Fprintln(out, line)
			}
		}
	}
	if count {
		fmt.Fprintln(out, n)
	}
	if n == 0 {
		return 1
	}
	return 0
}

func cmdHead(_ context.Context, _ *shell, args []string, stdin io.Reader, out, _ io.Writer) int {
	n := 10
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-n" && i+1 < len(args):
			n, _ = strconv.Atoi(args[i+1])
			i++
		case strings.HasPrefix(a, "-n"):
			n, _ = strconv.Atoi(a[2:])
		case strings.HasPrefix(a, "-"):
			n, _ = strconv.Atoi(a[1:])
		}
	}
	sc := bufio.NewScanner(stdin)
	for i := 0; i < n && sc.Scan(); i++ {
		fmt.Fprintln(out, sc.Text())
	}
	return 0
}

// cmdWc counts as toybox's wc does: -l lines, -w words, -m characters, -c bytes (in that order
// whatever the order of the flags); none means -lwc. Standard input alone prints only the numbers,
// each file adds its name, several files a "total" line.
func cmdWc(_ context.Context, sh *shell, args []string, stdin io.Reader, out, stderr io.Writer) int {
	var lines, words, chars, bytesF bool
	var files []string
	for i, a := range args {
		if a == "--" {
			files = append(files, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			for _, f := range a[1:] {
				switch f {
				case 'l':
					lines = true
				case 'w':
					words = true
				case 'm':
					chars = true
				case 'c':
					bytesF = true
				default:
					fmt.Fprintf(stderr, "wc: Unknown option '%c' (see \"wc --help\")\n", f)
					return 1
				}
			}
			continue
		}
		files = append(files, a)
	}
	if !lines && !words && !chars && !bytesF {
		lines, words, bytesF = true, true, true
	}
	count := func(data []byte) []int {
		var n []int
		if lines {
			n = append(n, bytes.Count(data, []byte("\n")))
		}
		if words {
			n = append(n, len(bytes.Fields(data)))
		}
		if chars {
			n = append(n, utf8.RuneCount(data))
		}
		if bytesF {
			n = append(n, len(data))
		}
		return n
	}
	show := func(n []int, name string) {
		f := make([]string, len(n))
		for i, v := range n {
			f[i] = strconv.Itoa(v)
		}
		if name != "" {
			f = append(f, name)
		}
		fmt.Fprintln(out, strings.Join(f, " "))
	}
	if len(files) == 0 {
		data, _ := io.ReadAll(io.LimitReader(stdin, 64<<20))
		show(count(data), "")
		return 0
	}
	ret := 0
	var total []int
	for _, f := range files {
		data, err := sh.d.fs.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "wc: %s: %s\n", f, fsErr(err))
			ret = 1
			continue
		}
		n := count(data)
		show(n, f)
		if total == nil {
			total = make([]int, len(n))
		}
		for i := range n {
			total[i] += n[i]
		}
	}
	if len(files) > 1 && total != nil {
		show(total, "total")
	}
	return ret
}

func cmdSettings(_ context.Context, sh *shell, args []string, _ io.Reader, out, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--user" && len(args) > 1 {
		args = args[2:]
	}
	if len(args) < 2 {
		fmt.Fprintln(stderr, "Invalid command: ")
		return 255
	}
	verb, ns := args[0], args[1]
	if ns != "global" && ns != "secure" && ns != "system" {
		fmt.Fprintf(stderr, "Invalid namespace '%s'\n", ns)
		return 255
	}
	switch verb {
	case "get":
		if len(args) < 3 {
			fmt.Fprintln(stderr, "Invalid command: get")
			return 255
		}
		v, ok := sh.d.Setting(ns, args[2])
		if !ok {
			v = "null"
		}
		fmt.Fprintln(out, v)
	case "put":
		if len(args) < 4 {
			fmt.Fprintln(stderr, "Invalid command: put")
			return 255
		}
		sh.d.SetSetting(ns, args[2], args[3])
	case "list":
		sh.d.mu.Lock()
		keys := make([]string, 0, len(sh.d.settings[ns]))
		for k := range sh.d.settings[ns] {
			keys = append(keys, k)
		}
		vals := sh.d.settings[ns]
		sortStrings(keys)
		for _, k := range keys {
			fmt.Fprintf(out, "%s=%s\n", k, vals[k])
		}
		sh.d.mu.Unlock()
	default:
		fmt.Fprintf(stderr, "Invalid command: %s\n", verb)
		return 255
	}
	return 0
}

func cmdDumpsys(_ context.Context, sh *shell, args []string, _ io.Reader, out, _ io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(out, "Currently running services:\n  package\n  settings")
		return 0
	}
	if args[0] != "package" {
		fmt.Fprintf(out, "Can't find service: %s\n", args[0])
		return 0
	}
	names := args[1:]
	if len(names) == 0 {
		names = sh.d.PackageNames()
	}
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			continue
		}
		DumpsysPackage(out, sh.d, n)
	}
	return 0
}

func cmdCmd(ctx context.Context, sh *shell, args []string, stdin io.Reader, out, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "cmd: No service specified; use -l to list all running services. Use -w to start and wait for a service.")
		return 20
	}
	switch args[0] {
	case "package":
		return cmdPm(ctx, sh, args[1:], stdin, out, stderr)
	case "settings":
		return cmdSettings(ctx, sh, args[1:], stdin, out, stderr)
	case "-l":
		fmt.Fprintln(out, "Currently running services:\n  package\n  settings")
		return 0
	}
	fmt.Fprintf(stderr, "cmd: Can't find service: %s\n", args[0])
	return 20
}
