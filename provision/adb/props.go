package adb

import (
	"context"
	"fmt"
	"strings"
)

// MaxPropsOutput bounds `getprop` (every property): a phone has about a thousand, 50-200 KiB.
const MaxPropsOutput = 1 << 20

// maxPropOutput bounds one property's value as printed (values are at most 92 bytes, ro.* ones
// longer but short).
const maxPropOutput = 64 << 10

// GetProp returns one system property's value ("" when unset), as `getprop <name>` prints it.
func (d *Device) GetProp(ctx context.Context, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, " \t\n'\"\\$`;|&<>()") {
		return "", &DeviceError{Op: "reading property", Serial: d.Serial(), Err: fmt.Errorf("invalid property name %q", name)}
	}
	r, err := d.ShellLimit(ctx, "getprop "+name, maxPropOutput)
	if err != nil {
		return "", d.fail(ctx, "reading property "+name, err)
	}
	if r.ExitCode != 0 {
		return "", &DeviceError{Op: "reading property " + name, Serial: d.Serial(), State: StateDevice, Err: r.exitErr()}
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(r.Stdout), "\n"), "\r"), nil
}

// GetProps returns every system property (`getprop` with no argument).
func (d *Device) GetProps(ctx context.Context) (map[string]string, error) {
	r, err := d.ShellLimit(ctx, "getprop", MaxPropsOutput)
	if err != nil {
		return nil, d.fail(ctx, "reading properties", err)
	}
	if r.ExitCode != 0 {
		return nil, &DeviceError{Op: "reading properties", Serial: d.Serial(), State: StateDevice, Err: r.exitErr()}
	}
	props, err := ParseGetprop(string(r.Stdout))
	if err != nil {
		return nil, &DeviceError{Op: "reading properties", Serial: d.Serial(), State: StateDevice, Err: err}
	}
	return props, nil
}

func propStart(line string) bool {
	if strings.TrimSpace(line) == "" {
		return true
	}
	name, _, ok := strings.Cut(line, "]: [")
	return ok && strings.HasPrefix(name, "[") && !strings.ContainsAny(name, " \t")
}

// ParseGetprop parses the output of `getprop`: lines "[name]: [value]". A value may span lines (it
// ends at the "]" that closes a line); carriage returns from terminals are dropped. Lines that are
// not properties are an error naming the line.
func ParseGetprop(out string) (map[string]string, error) {
	props := map[string]string{}
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			continue
		}
		start := i + 1
		if !strings.HasPrefix(line, "[") {
			return nil, fmt.Errorf("parsing getprop output line %d %q: want \"[name]: [value]\"", start, truncate(line, 80))
		}
		name, rest, ok := strings.Cut(line[1:], "]: [")
		if !ok {
			return nil, fmt.Errorf("parsing getprop output line %d %q: want \"[name]: [value]\"", start, truncate(line, 80))
		}
		// A value ends on a line that ends with "]" and is followed by the next property (or the
		// end); until then, the newlines are part of it. The lines are joined once at the end:
		// appending line by line is quadratic, and a device that prints one unclosed value over
		// megabytes of short lines would hang the parser.
		first, last := i, rest
		for !(strings.HasSuffix(last, "]") && (i+1 >= len(lines) || propStart(lines[i+1]))) {
			if i+1 >= len(lines) {
				return nil, fmt.Errorf("parsing getprop output line %d: value of %s never closes", start, truncate(name, 80))
			}
			i++
			last = lines[i]
		}
		value := rest
		if i > first {
			value = rest + "\n" + strings.Join(lines[first+1:i+1], "\n")
		}
		props[name] = strings.TrimSuffix(value, "]")
	}
	return props, nil
}
