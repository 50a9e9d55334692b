// Package android is the simulated Android userland of provkit's device simulator: a device's
// system properties, package manager state, settings and file system, and a small shell that answers
// the commands validators run (getprop, pm, cmd package, dumpsys package, sha256sum, ls, cat,
// settings, id, echo, which) in the exact output formats of real Android 10 to 15.
//
// Every piece of text a simulated device prints is generated in format.go, in one place, so that
// parsers elsewhere in provkit can be tested against both these outputs and real captures.
//
// Terms:
//   - SDK: the API level that selects output formats: 29 (Android 10) to 35 (Android 15).
//   - Package: one installed application. Its System install is the copy on a read-only partition
//     (/system, /product, /system_ext, /vendor); its Update is a copy under /data/app that replaces
//     it (UPDATED_SYSTEM_APP) or, for a non-system app, the only copy. The active install is the
//     Update when there is one, otherwise the System install.
//   - Code path: the directory holding an install's APK (dumpsys prints it as codePath=); the APK
//     itself is CodePath/APK, which is what `pm path` prints.
//   - User state: per Android user (0 is the owner): installed, enabled state (0 default, 1 enabled,
//     2 disabled, 3 disabled-user, 4 disabled-until-used) and granted runtime permissions.
//   - Recovery: the device runs recovery rather than Android (SetRecovery): the framework's
//     commands (pm, cmd, dumpsys, settings) are not found and sys.boot_completed is unset.
//   - File system: an in-memory tree of files and directories; a file's bytes live in memory or,
//     for large APKs given by path, in a host file read on demand.
package android
