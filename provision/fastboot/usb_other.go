//go:build !(linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x))

package fastboot

// USB transfers use Linux's usbfs; elsewhere openUSBIO stays nil and OpenUSB says so.
