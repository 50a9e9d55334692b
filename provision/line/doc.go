// Package line is an unattended factory station: it watches for phones arriving, runs each
// through the station's steps, records every step and the verdict in the ledger
// (provision/ledger), and reports as it goes, several phones at once, each at its own step.
//
// Terms:
//   - Source: where phones come from: the adb server's device list (track-devices), or TCP
//     addresses polled for an adbd and a fastboot server (simulated phones, phones on Wi-Fi).
//     A source reports presence: a phone appeared (in Android or in fastboot mode) or left.
//   - Key: how a source names a phone (the adb server's serial, or the TCP address). The serial a
//     phone is recorded under is the one it reports itself (ro.serialno, fastboot serialno).
//   - Step: one stage of a run: "bootloader" (reboot into fastboot), "flash", "boot" (reboot and
//     wait for Android and adb), "check" (the policy check of provision/check). A check-only
//     station (no firmware) runs "check" only, after "boot" when a phone arrives in fastboot mode.
//   - Flasher: what writes the firmware in the "flash" step. DirFlasher flashes a directory of
//     <partition>.img files over fastboot TCP; the planner of `provkit flash` will replace it.
//   - Verdict: pass, fail, error or interrupted (see provision/ledger). It is recorded before it
//     is reported, so a reported verdict is never lost.
//   - Re-processing: a phone recorded PASS for the same policy and firmware digests is skipped
//     (unless Force); a phone that stays plugged in after its verdict is not run again; a phone
//     unplugged and plugged back after a FAIL or ERROR is; an interrupted run is run again; a run
//     cut short by a crash is resumed and the step it was in is done again.
//   - Update: what the station reports (to the terminal UI or as JSON Lines): a phone seen, a
//     step started, progress, a verdict, a skip, a hook that failed.
package line
