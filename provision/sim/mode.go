package sim

import (
	"fmt"
	"strings"
)

// Mode is what a simulated device is running. A phone is in one mode at a time, and the mode
// decides which of its two ports answers: adbd in android, recovery and sideload; fastboot in
// bootloader and fastbootd. The other port refuses connections.
type Mode string

// Modes.
const (
	// ModeAndroid is booted Android: adbd answers as "device"; fastboot does not.
	ModeAndroid Mode = "android"
	// ModeBootloader is the bootloader's fastboot: is-userspace no, logical partitions unknown.
	ModeBootloader Mode = "bootloader"
	// ModeFastbootd is userspace fastboot (fastbootd, in recovery): is-userspace yes, logical
	// partitions flashable.
	ModeFastbootd Mode = "fastbootd"
	// ModeRecovery is recovery with adbd: adb lists the device as "recovery"; the Android
	// framework is not running.
	ModeRecovery Mode = "recovery"
	// ModeSideload is recovery's "apply update from adb": adb lists the device as "sideload";
	// only reboot is served.
	ModeSideload Mode = "sideload"
)

// Modes lists every mode, default first.
var Modes = []Mode{ModeAndroid, ModeBootloader, ModeFastbootd, ModeRecovery, ModeSideload}

// ParseMode parses a mode name; "" is ModeAndroid.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeAndroid, nil
	}
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("mode %q: use one of %s", s, strings.Join(names, ", "))
}

// ADB reports whether adbd listens in this mode.
func (m Mode) ADB() bool { return m == ModeAndroid || m == ModeRecovery || m == ModeSideload }

// Fastboot reports whether fastboot listens in this mode.
func (m Mode) Fastboot() bool { return m == ModeBootloader || m == ModeFastbootd }

// adbState is the system type of adbd's CNXN banner in this mode, which the adb server shows as
// the device's state ("device", "recovery", "sideload").
func (m Mode) adbState() string {
	switch m {
	case ModeRecovery:
		return "recovery"
	case ModeSideload:
		return "sideload"
	}
	return "device"
}

// ModeForTarget returns the mode a reboot target leads to, as adb (reboot:<target>) and fastboot
// (reboot, reboot-<target>) name them: "" boots Android, "bootloader" the bootloader,
// "fastboot" fastbootd, "recovery" recovery, "sideload" and "sideload-auto-reboot" recovery's
// sideload. A target a phone does not know boots Android.
func ModeForTarget(target string) Mode {
	switch target {
	case "bootloader":
		return ModeBootloader
	case "fastboot":
		return ModeFastbootd
	case "recovery":
		return ModeRecovery
	case "sideload", "sideload-auto-reboot":
		return ModeSideload
	}
	return ModeAndroid
}
