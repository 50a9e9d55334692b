// Package counter is the shop counter: it waits for phones to be plugged in, checks each one once
// against the policy as it arrives, reports the verdict at once, and waits for the phone to be
// unplugged before it will check it again. A retailer checks a box of stock one phone after
// another with no command per phone.
//
// Phones come from the same sources as a factory station (provision/line): the adb server's
// device list, or adbd TCP addresses (simulated phones). The check itself is provision/check's.
package counter
