// Package patch is the "provkit patch" command: it turns flags into aosp.Options, runs the AOSP
// patcher (manifests/aosp) and prints the plan, the diff, the check verdict or the JSON document.
//
// Terms: the "APK inspector" is the adapter (apkfacts.go) that fills aosp.APKFacts from the APK
// engine, firmware/apk.
package patch
