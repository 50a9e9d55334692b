// Package fastboot is provkit's fastboot client over TCP: it reads bootloader variables, sends
// images and flashes, erases and switches slots on a device in fastboot mode, as the fastboot
// program does with "-s tcp:host:port".
//
// Terms:
//   - Handshake: both sides send "FB" and a two-digit version ("FB01"); the lower one is used.
//   - Packet: over TCP, an 8-byte big-endian length then the bytes. A command ("getvar:product",
//     "download:0012ab00", "flash:boot_a") is one packet; so is each reply.
//   - Reply: four letters then text. INFO and TEXT are progress (passed to Client.Progress); OKAY
//     ends a command with its value; FAIL ends it with the device's reason; DATA%08x asks for (or
//     announces) that many bytes of data phase.
//   - max-download-size: the largest download the device accepts. A bigger image is sent as several
//     sparse images, each covering part of the partition and skipping ("don't care") the rest; a
//     raw image is first described as one sparse raw chunk. The device writes the pieces in turn.
//   - Slot: the A/B suffix ("a", "b") that set_active makes the one to boot.
//
// USB is out of scope: devices on USB are flashed with the fastboot program itself.
package fastboot
