package android

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/provkit/provkit/manifests/policy"
)

// MaxStreamedInstall bounds an APK streamed to `pm install -S <size>`.
const MaxStreamedInstall = 4 << 30

func sortStrings(s []string) { sort.Strings(s) }

// pmArgs walks pm's arguments: options first, then positional arguments.
type pmArgs struct {
	args []string
	i    int
}

func (a *pmArgs) next() (string, bool) {
	if a.i >= len(a.args) {
		return "", false
	}
	a.i++
	return a.args[a.i-1], true
}

func parseUser(s string) (int, error) {
	if s == "all" || s == "current" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("Bad user number: %s", s)
	}
	return n, nil
}

func failure(out io.Writer, err error) int {
	var ie *InstallError
	if errors.As(err, &ie) {
		fmt.Fprintf(out, "Failure [%s]\n", ie.Error())
	} else {
		fmt.Fprintf(out, "Failure [%v]\n", err)
	}
	return 1
}

// cmdPm implements `pm ...` and `cmd package ...` (the same shell command since Android 7).
func cmdPm(ctx context.Context, sh *shell, args []string, stdin io.Reader, out, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(out, "Package manager (package) commands:\n  help\n      Print this help text.")
		return 0
	}
	d := sh.d
	verb, rest := args[0], &pmArgs{args: args[1:]}
	switch verb {
	case "list":
		what, _ := rest.next()
		switch what {
		case "packages", "package":
			return pmList(d, rest, out, stderr)
		case "users":
			fmt.Fprintln(out, "Users:")
			for _, u := range d.Users() {
				name := "Owner"
				if u != 0 {
					name = fmt.Sprintf("User%d", u)
				}
				fmt.Fprintf(out, "\tUserInfo{%d:%s:c13} running\n", u, name)
			}
			return 0
		}
		fmt.Fprintf(stderr, "Error: unknown list type '%s'\n", what)
		return 255
	case "path":
		user := 0
		var pkg string
		for a, ok := rest.next(); ok; a, ok = rest.next() {
			if a == "--user" {
				v, _ := rest.next()
				u, err := parseUser(v)
				if err != nil {
					fmt.Fprintln(stderr, err)
					return 255
				}
				user = u
				continue
			}
			pkg = a
		}
		if pkg == "" {
			fmt.Fprintln(stderr, "Error: no package specified")
			return 1
		}
		if !PmPath(out, d, pkg, user) {
			return 1
		}
		return 0
	case "dump":
		pkg, _ := rest.next()
		DumpsysPackage(out, d, pkg)
		return 0
	case "install":
		return pmInstall(ctx, d, rest, stdin, out, stderr)
	case "install-existing":
		user, pkg, err := userAndPackage(rest)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 255
		}
		if err := d.InstallExisting(pkg, user); err != nil {
			return failure(out, err)
		}
		fmt.Fprintf(out, "Package %s installed for user: %d\n", pkg, user)
		return 0
	case "uninstall":
		user, keep := -1, false
		var pkg string
		for a, ok := rest.next(); ok; a, ok = rest.next() {
			switch a {
			case "-k":
				keep = true
			case "--user":
				v, _ := rest.next()
				u, err := parseUser(v)
				if err != nil {
					fmt.Fprintln(stderr, err)
					return 255
				}
				user = u
			default:
				pkg = a
			}
		}
		if pkg == "" {
			fmt.Fprintln(stderr, "Error: package name not specified")
			return 1
		}
		if err := d.Uninstall(pkg, user, keep); err != nil {
			return failure(out, err)
		}
		fmt.Fprintln(out, "Success")
		return 0
	case "enable", "disable", "disable-user", "disable-until-used", "default-state":
		state := map[string]int{"enable": policy.EnabledEnabled, "disable": policy.EnabledDisabled, "disable-user": policy.EnabledDisabledUser,
			"disable-until-used": policy.EnabledDisabledUntilUse, "default-state": policy.EnabledDefault}[verb]
		user, pkg, err := userAndPackage(rest)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 255
		}
		if pkg == "" {
			fmt.Fprintln(stderr, "Error: no package or component specified")
			return 1
		}
		if err := d.SetEnabled(pkg, user, state); err != nil {
			fmt.Fprintf(stderr, "Exception occurred while executing '%s':\njava.lang.IllegalArgumentException: %v\n", verb, err)
			return 255
		}
		fmt.Fprintf(out, "Package %s new state: %s\n", pkg, policy.EnabledStateName(state))
		return 0
	case "grant", "revoke":
		user := 0
		var pos []string
		for a, ok := rest.next(); ok; a, ok = rest.next() {
			if a == "--user" {
				v, _ := rest.next()
				user, _ = parseUser(v)
				continue
			}
			pos = append(pos, a)
		}
		if len(pos) < 2 {
			fmt.Fprintln(stderr, "Error: no permission specified")
			return 1
		}
		if err := d.Grant(pos[0], user, pos[1], verb == "grant"); err != nil {
			fmt.Fprintf(stderr, "Exception occurred while executing '%s':\njava.lang.IllegalArgumentException: %v\n", verb, err)
			return 255
		}
		return 0
	}
	fmt.Fprintf(stderr, "Unknown command: %s\n", verb)
	return 255
}

func userAndPackage(rest *pmArgs) (int, string, error) {
	user := 0
	var pkg string
	for a, ok := rest.next(); ok; a, ok = rest.next() {
		if a == "--user" {
			v, _ := rest.next()
			u, err := parseUser(v)
			if err != nil {
				return 0, "", err
			}
			user = u
			continue
		}
		pkg = a
	}
	return user, pkg, nil
}

func pmList(d *Device, rest *pmArgs, out, stderr io.Writer) int {
	var o ListOptions
	for a, ok := rest.next(); ok; a, ok = rest.next() {
		switch a {
		case "-f":
			o.ShowPath = true
		case "-s":
			o.System = true
		case "-3":
			o.ThirdParty = true
		case "-d":
			o.Disabled = true
		case "-e":
			o.Enabled = true
		case "-U":
			o.ShowUID = true
		case "-i":
			o.ShowInstaller = true
		case "-u":
			o.IncludeUninstalled = true
		case "-a", "-l":
		case "--show-versioncode":
			o.ShowVersion = true
		case "--user":
			v, _ := rest.next()
			u, err := parseUser(v)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 255
			}
			o.User = u
		case "--uid":
			rest.next()
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(stderr, "Error: Unknown option: %s\n", a)
				return 255
			}
			o.Filter = a
		}
	}
	PmListPackages(out, d, o)
	return 0
}

// pmInstall implements `pm install [-r] [-d] [-g] [-t] [-i installer] [--user N] [-S size] [path]`.
// With -S the APK is read from stdin (adb's streamed install); otherwise from a device file.
func pmInstall(ctx context.Context, d *Device, rest *pmArgs, stdin io.Reader, out, stderr io.Writer) int {
	size := int64(-1)
	user, downgrade := 0, false
	installer := ""
	var file string
	for a, ok := rest.next(); ok; a, ok = rest.next() {
		switch a {
		case "-r", "-g", "-t", "-f", "--dont-kill", "--full", "--no-incremental", "--staged", "--restrict-permissions", "--instant":
		case "-d":
			downgrade = true
		case "-i", "--install-reason", "--originating-uri", "--referrer", "--abi", "-p", "--pkg", "--install-location":
			v, _ := rest.next()
			if a == "-i" {
				installer = v
			}
		case "--user":
			v, _ := rest.next()
			u, err := parseUser(v)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 255
			}
			user = u
		case "-S":
			v, _ := rest.next()
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > MaxStreamedInstall {
				fmt.Fprintf(stderr, "Error: invalid size: %s\n", v)
				return 255
			}
			size = n
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(stderr, "Error: Unknown option %s\n", a)
				return 255
			}
			file = a
		}
	}
	var data []byte
	switch {
	case size >= 0 && file == "" || file == "-":
		if size < 0 {
			fmt.Fprintln(stderr, "Error: must either specify a package size or an APK file")
			return 255
		}
		data = make([]byte, size)
		if _, err := io.ReadFull(stdin, data); err != nil {
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintf(out, "Failure [INSTALL_FAILED_INVALID_APK: Failed to read %d bytes from stdin: %v]\n", size, err)
			return 1
		}
	case file != "":
		b, err := d.fs.ReadFile(file)
		if err != nil {
			fmt.Fprintf(out, "Failure [INSTALL_FAILED_INVALID_URI: Error: Unable to open file: %s]\n", file)
			return 1
		}
		data = b
	default:
		fmt.Fprintln(stderr, "Error: must either specify a package size or an APK file")
		return 255
	}
	if _, err := d.InstallAPK(data, user, downgrade, installer); err != nil {
		return failure(out, err)
	}
	fmt.Fprintln(out, "Success")
	return 0
}
