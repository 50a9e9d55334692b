// Package devices implements `provkit devices`: the devices the adb server knows (and any reached
// directly), with state, model, build fingerprint and transport.
package devices
