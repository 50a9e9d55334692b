// Package adb is provkit's own ADB client. It talks to Android devices two ways:
//
//   - through the adb server (Server): the host ("smart socket") protocol on 127.0.0.1:5037, or
//     the port in ANDROID_ADB_SERVER_PORT. The server owns USB and TCP links and the RSA key.
//   - directly to adbd over TCP (Dial): CNXN/AUTH/OPEN/WRTE/OKAY/CLSE with this host's RSA key,
//     for factory stations that run no adb server.
//
// Both give a Transport, and Device runs the same high-level operations (shell, exec, sync push
// and pull, install, reboot, getprop) over either, so callers do not care which link they use.
//
// Terms:
//   - Host protocol: requests to the adb server, each a "%04x" length and the text, answered OKAY,
//     or FAIL and a "%04x"-prefixed reason. "host:" requests are answered by the server itself; after
//     "host:transport:<serial>" the same connection carries one device service.
//   - Service: a named stream on a device ("shell,v2,raw:ls", "exec:cmd package list", "sync:",
//     "abb_exec:package\x00install\x00-S\x00<size>", "reboot:bootloader").
//   - Transport: a way to open services on one device (the adb server, or a direct connection).
//   - Stream: one open service: bytes both ways, closed on context cancellation. The adb transport
//     has no half-close; a service learns the end of its input from its own protocol (shell v2
//     close-stdin, a size given with -S).
//   - Transport id: the adb server's number for one attachment of a device; PinnedTransport uses
//     it so that a device that rebooted or was replugged is noticed rather than silently reused.
//   - Flow control (direct link): each side keeps one unacknowledged WRTE per stream; the client
//     acknowledges at once while fewer than four received packets wait to be read, which bounds a
//     stream's memory to four max-payload packets.
//   - Features: the capabilities a device announces in its CNXN banner ("shell_v2", "cmd",
//     "stat_v2", "ls_v2", "abb_exec", ...); the client chooses protocols by them.
//   - Sideload: serving an OTA package to a device in sideload mode (recovery's "apply update
//     from ADB"): over "sideload-host:<size>:<blocksize>" the device asks for blocks by number
//     (eight decimal digits) and ends with DONEDONE or FAILFAIL; devices older than KitKat take
//     the whole package over "sideload:<size>" and answer OKAY or FAIL. See Device.Sideload and
//     provision/adb/wire.
//   - State: a device's connection state ("device", "offline", "unauthorized", ...). Errors about a
//     device are DeviceErrors: they name its serial and, when known, its state once; the sentinels
//     ErrOffline, ErrUnauthorized, ErrDeviceNotFound, ErrNoServer and ErrClosed are matched with
//     errors.Is. What a person should do is StateOf(err).Hint(), for the user interface to add.
//
// Every call takes a context.Context; cancelling it ends the call and closes what it opened. A
// Server, a direct connection and a Device are safe for concurrent use, so a caller can drive many
// devices (and many streams on one device) at once.
package adb
