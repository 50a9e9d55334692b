// Package wire encodes and decodes the bytes that travel between an adb host and adbd: the transport
// packets, the AUTH public-key format, the connection banner, the file sync protocol and the shell v2
// framing. It is shared by provkit's ADB client (provision/adb) and the device simulator
// (provision/sim), so both sides speak exactly the same dialect. It does no I/O of its own beyond
// reading from and writing to the io.Reader/io.Writer it is given, and never trusts a length read from
// the peer before checking it against a limit.
//
// Terms:
//   - Packet: one transport message: a 24-byte little-endian header (command, arg0, arg1, payload
//     length, payload checksum, magic = command XOR 0xffffffff) followed by the payload. Commands are
//     CNXN (connect), AUTH, OPEN, OKAY, WRTE (write), CLSE (close), SYNC (obsolete USB resync) and STLS
//     (start TLS).
//   - Protocol version: 0x01000000 is the original protocol; from 0x01000001 (VersionSkipChecksum) the
//     checksum field is neither computed nor checked. The lower of the two peers' versions applies.
//   - Max payload (maxdata): the largest payload a peer accepts, announced in CNXN arg1; the smaller of
//     the two announcements applies to the whole connection.
//   - Stream: a logical connection multiplexed on the transport, named on each side by a local id.
//     OPEN(local, 0, "service") asks for one; OKAY(local, remote) accepts it and acknowledges each WRTE
//     (flow control: one unacknowledged WRTE per stream and direction); CLSE ends it.
//   - Banner: the CNXN payload, "<systemtype>:<serial>:<key>=<value>;...;features=<a>,<b>,...", where
//     systemtype is "device", "host", "bootloader", "recovery", "sideload" or "rescue".
//   - AUTH: adbd sends a 20-byte random token (AUTH type 1); the host answers with a PKCS#1 v1.5 RSA
//     signature of it, treated as a SHA-1 digest (type 2), or, when none of its keys is accepted,
//     with its public key (type 3) in the adbkey.pub format: base64 of a 524-byte little-endian
//     structure (modulus size in 32-bit words, n0inv = -1/n mod 2^32, modulus, R^2 mod n, exponent),
//     then " user@host".
//   - Sync: the protocol spoken inside a "sync:" stream: requests of a 4-byte ASCII id and a
//     little-endian length (STAT, STA2, LST2, LIST, LIS2, SEND, SND2, RECV, RCV2, QUIT), answered by
//     fixed-size stat records, directory entries (DENT, DNT2), DATA chunks of at most 64 KiB, DONE,
//     OKAY or FAIL with a message.
//   - Shell v2: the framing inside a "shell,v2:" stream: one id byte (stdin 0, stdout 1, stderr 2,
//     exit 3, close-stdin 4, window-size 5) and a little-endian uint32 length, then the data; the exit
//     packet carries one byte, the exit status.
//   - Sideload: inside a "sideload-host:<size>:<blocksize>" stream the device asks for blocks of
//     the OTA package by number, eight ASCII decimal digits, and ends with DONEDONE or FAILFAIL;
//     the legacy "sideload:<size>" stream carries the whole package, then OKAY or FAIL.
package wire
