// Package check validates live Android devices against a preinstall policy: it gathers each
// device's facts over ADB (build fingerprint, and for every mandated app its package-manager state
// and the APK files themselves) and judges them with the rules of manifests/policy.
//
// Nothing a device prints about an APK's signer is trusted: the APKs named by `pm path` (and, for
// an app updated into /data, the system copy underneath) are pulled over sync and verified on the
// host with firmware/apk. A device's `sha256sum` only saves a pull when it names an APK already
// verified in this run. That one shortcut does take the device's word (for the digest): a device
// whose sha256sum lies could get the verdict of an APK it does not hold.
//
// Terms:
//   - Target: one device to check: its serial, its connection state as the adb server reported it,
//     and how to reach it (through the adb server, or directly to adbd over TCP).
//   - Facts: what was established about a device: properties, and per app the package-manager
//     state (parsed from `dumpsys package`, `pm path`, `pm list packages`) and the verified APKs.
//   - Verdict: "pass" (every rule passed), "fail" (the device answered and some rule failed: not
//     compliant) or "error" (the device could not be checked: unauthorized, offline, gone, timed
//     out, interrupted). Reasons say which rule failed or what went wrong and what to do.
//   - Evidence: per app, the code path, versionCode, APK SHA-256 and signer that were judged, and
//     every rule's result, so a report can be re-checked.
//   - Cache: APKs verified in this run, keyed by the SHA-256 of their bytes; shared by all devices
//     checked concurrently, so identical APKs are pulled and verified once.
package check
