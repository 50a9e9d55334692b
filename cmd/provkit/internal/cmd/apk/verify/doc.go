// Package verify is "provkit apk verify": it verifies APK signatures with package firmware/apk and,
// with --policy, checks the APK against a preinstall policy's pins (package manifests/policy).
package verify
