// Package adbtest is for tests only: it starts a private adb server (the real Debian `adb`
// program) with its own HOME and port, so tests never touch a developer's server on 5037 and
// always stop what they start.
//
// Terms:
//   - Server: one `adb -P <port> server` process started by StartServer, killed in t.Cleanup.
//   - Env: the environment (HOME, ANDROID_USER_HOME, ANDROID_ADB_SERVER_PORT) under which the
//     server runs; run the adb command line with it to act on the same server.
package adbtest
