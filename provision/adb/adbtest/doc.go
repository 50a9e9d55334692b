// Package adbtest is for tests only: it starts a private adb server (the real Debian `adb`
// program) with its own HOME and port, so tests never touch a developer's server on 5037 and
// always stop what they start; and a small adbd peer the tests control.
//
// Terms:
//   - Server: one `adb -P <port> nodaemon server` process started by StartServer as a child of
//     the test process, stopped in t.Cleanup; on Linux it also dies with the test binary when
//     that is killed before its cleanups run (go test -timeout, an interrupt).
//   - Env: the environment (HOME, ANDROID_USER_HOME, ANDROID_ADB_SERVER_PORT) under which the
//     server runs; run the adb command line with it to act on the same server.
//   - Peer: a minimal adbd on 127.0.0.1 (StartPeer) that runs commands with the host's /bin/sh in
//     a private directory and serves sync from it, with scriptable faults (authentication refused,
//     silence, a link dropped after N bytes, a slow link, a device ignoring flow control). It tests
//     the client's transport and fault paths; the device simulator (provision/sim) is the model of
//     Android.
package adbtest
