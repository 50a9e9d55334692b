// Package demo implements `provkit demo`: provkit's main job on built-in defaults. It makes a
// sample signed APK and a policy pinning its key, starts simulated devices in-process (some
// compliant, some not), checks them over the direct ADB transport and prints the verdicts.
package demo
