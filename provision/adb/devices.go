package adb

import (
	"fmt"
	"strconv"
	"strings"
)

// State is a device's connection state as the adb server (or the direct transport) reports it.
type State string

// The states adb reports (transport.cpp to_string(ConnectionState)), plus StateGone for a device
// that is no longer attached at all.
const (
	StateDevice        State = "device"
	StateOffline       State = "offline"
	StateUnauthorized  State = "unauthorized"
	StateAuthorizing   State = "authorizing"
	StateConnecting    State = "connecting"
	StateBootloader    State = "bootloader"
	StateRecovery      State = "recovery"
	StateRescue        State = "rescue"
	StateSideload      State = "sideload"
	StateHost          State = "host"
	StateNoPermissions State = "no permissions"
	StateDetached      State = "detached"
	StateUnknown       State = "unknown"
	StateGone          State = "gone"
)

// Online reports whether the device accepts commands in this state (device, recovery, rescue and
// sideload run adbd services; everything else refuses them).
func (s State) Online() bool {
	switch s {
	case StateDevice, StateRecovery, StateRescue, StateSideload:
		return true
	}
	return false
}

// Hint says what a person should do about a device in this state, "" when nothing.
func (s State) Hint() string {
	switch s {
	case StateUnauthorized, StateAuthorizing:
		return "accept the USB debugging prompt on the device (or install this host's adbkey.pub in /data/misc/adb/adb_keys)"
	case StateOffline, StateConnecting:
		return "wait for the device to finish booting, or reconnect it ('adb reconnect offline')"
	case StateNoPermissions:
		return "fix the USB permissions on this host (udev rules, plugdev group)"
	case StateGone:
		return "reattach the device (cable, 'adb connect')"
	case StateBootloader:
		return "the device is in the bootloader: use fastboot, or reboot it"
	}
	return ""
}

// DeviceInfo is one line of `adb devices -l`.
type DeviceInfo struct {
	Serial      string            `json:"serial"`
	State       State             `json:"state"`
	StateDetail string            `json:"stateDetail,omitempty"` // e.g. the udev hint after "no permissions"
	DevPath     string            `json:"devpath,omitempty"`     // "usb:1-1.2" for USB devices
	Product     string            `json:"product,omitempty"`
	Model       string            `json:"model,omitempty"`
	Device      string            `json:"device,omitempty"`
	TransportID uint64            `json:"transportId,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"` // key:value fields this client does not know
}

// maxDevicesLines bounds how many device lines ParseDevices accepts from one reply.
const maxDevicesLines = 4096

// ParseDevices parses the text of a host:devices or host:devices-l reply (the format of
// `adb devices [-l]` without its header line). Blank lines are skipped; a malformed line is an error
// naming its number.
func ParseDevices(text string) ([]DeviceInfo, error) {
	var out []DeviceInfo
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "List of devices") {
			continue
		}
		if len(out) >= maxDevicesLines {
			return nil, fmt.Errorf("parsing device list: more than %d devices", maxDevicesLines)
		}
		d, err := parseDeviceLine(line)
		if err != nil {
			return nil, fmt.Errorf("parsing device list line %d %q: %w", i+1, truncate(line, 120), err)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseDeviceLine(line string) (DeviceInfo, error) {
	var d DeviceInfo
	// Short format: "serial\tstate". Long format: "%-22s %s" then " key:value" fields.
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return d, fmt.Errorf("want a serial and a state")
	}
	d.Serial = fields[0]
	rest := fields[1:]
	if rest[0] == "no" && len(rest) > 1 && rest[1] == "permissions" {
		d.State = StateNoPermissions
		rest = rest[2:]
		// The state is followed by a free-text hint that ends with "[url]"; take it whole.
		var detail []string
		for len(rest) > 0 && !knownDeviceField(rest[0]) {
			detail = append(detail, rest[0])
			end := strings.HasSuffix(rest[0], "]")
			rest = rest[1:]
			if end {
				break
			}
		}
		d.StateDetail = strings.Join(detail, " ")
	} else {
		d.State = State(rest[0])
		rest = rest[1:]
	}
	for _, f := range rest {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			if d.Extra == nil {
				d.Extra = map[string]string{}
			}
			d.Extra[f] = ""
			continue
		}
		switch k {
		case "usb":
			d.DevPath = f
		case "product":
			d.Product = v
		case "model":
			d.Model = v
		case "device":
			d.Device = v
		case "transport_id":
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return d, fmt.Errorf("bad transport_id %q", v)
			}
			d.TransportID = id
		default:
			if d.Extra == nil {
				d.Extra = map[string]string{}
			}
			d.Extra[k] = v
		}
	}
	return d, nil
}

func knownDeviceField(f string) bool {
	for _, p := range []string{"usb:", "product:", "model:", "device:", "transport_id:"} {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
