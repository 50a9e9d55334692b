// Package fastboot is provkit's fastboot client over TCP and USB: it reads bootloader variables,
// sends images and flashes, erases and switches slots on a device in fastboot mode, as the fastboot
// program does with "-s tcp:host:port" or "-s <serial>".
//
// Terms:
//   - Handshake: both sides send "FB" and a two-digit version ("FB01"); the lower one is used.
//   - Packet: over TCP, an 8-byte big-endian length then the bytes. A command ("getvar:product",
//     "download:0012ab00", "flash:boot_a") is one packet; so is each reply.
//   - Transport: what carries packets. TCP frames them as above, after the handshake. USB has no
//     framing and no handshake: a command is one bulk OUT transfer (at most 4096 bytes), a reply is
//     one bulk IN transfer (read into a 512-byte buffer), and the data phase is raw bulk OUT
//     transfers of at most 1 MiB (halved down to 16 KiB when the kernel answers ENOMEM).
//   - ZLP: a zero-length bulk packet. A transfer whose length is a non-zero multiple of the OUT
//     endpoint's wMaxPacketSize (64, 512 or 1024 bytes) ends with no short packet, so the device
//     could not tell it had ended; the USB transport sends a ZLP after such a command and after
//     such a data phase.
//   - Fastboot interface: a USB interface of class ff, subclass 42, protocol 03 (adb is ff/42/01),
//     with one bulk IN and one bulk OUT endpoint. ListUSB finds them in sysfs
//     (/sys/bus/usb/devices: "1-2.3" is a device by bus path, "1-2.3:1.0" its interface 0 of
//     configuration 1); its device node is /dev/bus/usb/BBB/DDD (busnum, devnum).
//   - usbfs: Linux's ioctl interface on that node. The transport detaches a kernel driver bound to
//     the interface, claims it, runs synchronous bulk transfers (USBDEVFS_BULK; a stall, EPIPE, is
//     cleared with USBDEVFS_CLEAR_HALT and the transfer tried once more), and releases it on Close.
//     No cgo and no libusb. A device that disappears (ENODEV) fails with ErrDeviceGone naming its
//     serial and bus path. USB works on Linux only.
//   - Reply: four letters then text. INFO and TEXT are progress (passed to Client.Progress); OKAY
//     ends a command with its value; FAIL ends it with the device's reason; DATA%08x asks for (or
//     announces) that many bytes of data phase.
//   - max-download-size: the largest download the device accepts. A bigger image is sent as several
//     sparse images, each covering part of the partition and skipping ("don't care") the rest; a
//     raw image is first described as one sparse raw chunk. The device writes the pieces in turn.
//   - Slot: the A/B suffix ("a", "b") that set_active makes the one to boot.
//
// The USB transport has been tested against a fake usbfs (which records the ioctl sequence) and a
// fake sysfs tree only; it has not run against a real phone. See docs/flashing.md, "USB".
package fastboot
