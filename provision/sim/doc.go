// Package sim is provkit's device simulator: simulated Android devices on loopback, each a real
// adbd-protocol TCP server and a real fastboot TCP server, with Android-like state set by a scenario
// file and faults to script. Debian's adb and fastboot programs drive it as they would a phone,
// which is how the tests know it is faithful.
//
// Terms:
//   - Device: one simulated phone: a serial, an adb address and a fastboot address on 127.0.0.1,
//     its Android state (package android) and its partitions.
//   - Mode: what the device runs, one at a time: android (adbd listens), bootloader and fastbootd
//     (fastboot listens; is-userspace no/yes; logical partitions only in fastbootd), recovery and
//     sideload (adbd listens, announcing itself as "recovery" or "sideload"). The port of the
//     other protocol refuses connections. A reboot's target picks the next mode.
//   - Transport: one TCP connection from an adb host to the simulated adbd: CNXN, AUTH, then
//     streams (see provision/adb/wire).
//   - Flow control: one WRTE in flight per stream and direction, acknowledged by OKAY once the
//     receiving service has consumed it. The delayed_ack feature of newer adb (a byte window per
//     stream) is not announced: Debian's adb 29 does not know it.
//   - Service: what a stream is opened to: shell (v2 and legacy), exec, sync, abb_exec, reboot;
//     in sideload mode only reboot and sideload-host (or, for a legacy device, sideload:).
//   - Sideload: a device in sideload mode asks the host for the OTA package's blocks (the zip's
//     end and central directory first, then the rest), checks it as recovery would (a zip; an A/B
//     payload.bin matching payload_properties.txt; pre-device), ends with DONEDONE or FAILFAIL,
//     records it (Device.Sideloaded) and after a good install reboots to Android. Packages above
//     1 GiB are refused: the simulator holds them in memory.
//   - Scenario: a YAML document describing devices (properties, packages, partitions, files,
//     faults); see docs/simulator.md and scenario.go. Its problems are reported as
//     file:line: field path: what is wrong and what is allowed (ScenarioError).
//   - Auth: how a device treats the host's key: trusted (the default, a factory-line build whose
//     adb_keys hold the station's key: the first signature is accepted), any (it asks: the user
//     taps "Allow"), keys, refuse (stays unauthorized), none.
//   - Fault: scripted misbehaviour: AUTH refused (unauthorized), CNXN never answered (offline), a
//     bandwidth limit (slow link), the connection dropped after N bytes or on a command, a reboot
//     that takes the device away for a while, fastboot dropping the link mid-download (the device
//     then reboots into the mode it was in).
//   - Partition: a named block device image of fixed size, written by fastboot flash (raw or
//     Android sparse images, applied chunk by chunk) and erase. Contents live in a temporary file.
package sim
