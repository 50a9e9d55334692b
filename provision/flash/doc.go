// Package flash turns a firmware package into the ordered list of fastboot commands that put it on
// a phone, as the fastboot program's "update" and "flashall" do.
//
// Terms:
//   - Firmware: where the images come from. OpenFirmware accepts a factory zip (outer zip with
//     bootloader-*.img, radio-*.img and a nested image-<product>-<build>.zip, read in place through
//     firmware/factoryzip: stored entries through the zip's offsets, a deflated nested zip spilled
//     to at most one temporary file), a directory holding android-info.txt and *.img, or one image
//     for one partition.
//   - Requirements: android-info.txt's "require board=", "require version-bootloader=",
//     "require version-baseband=" and "require-for-product:" lines, checked against the device's
//     getvar answers before anything is sent (CheckRequirements).
//   - Plan: the steps in fastboot's order (BuildPlan): bootloader and radio first, each followed by
//     a reboot into the bootloader; the boot-time images (boot, init_boot, vendor_boot, dtbo,
//     vbmeta*, pvmfw, ...); then, when the firmware has super_empty.img, a reboot into fastbootd,
//     update-super and each logical partition's image; then set_active, the wipe and the final
//     reboot as asked. Step.Command is the fastboot command text a dry run prints.
//   - Slot: "a", "b", "all" (both suffixes) or "other" (the one not currently active); empty means
//     the device's current slot, which fastboot resolves itself.
//   - Run: executes a plan on one device through a Dialer (called again after every reboot, once the
//     device has dropped the old session), stops at the first failing step and returns a Result with
//     each step's evidence: command, partition, bytes and SHA-256 of the image sent, duration, error.
//     This is the library entry point for a factory station: one Run per device, in parallel.
package flash
