package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Reserved adb ports: the adb server scans 5555-5585 for emulators, so simulated devices never
// listen there.
const (
	reservedLow  = 5555
	reservedHigh = 5585
	// DefaultBasePort is where `provkit sim` starts numbering ports: adb on base+2i, fastboot on
	// base+2i+1.
	DefaultBasePort = 15555
	// MaxDevices bounds one simulator.
	MaxDevices = 512
)

// Options configure a simulator.
type Options struct {
	// Devices is the number of devices (scenario templates are cycled).
	Devices int
	// BasePort: 0 picks free ports; otherwise adb listens on BasePort+2i and fastboot on
	// BasePort+2i+1, all on 127.0.0.1.
	BasePort int
	// Scenario defines the devices; nil means Builtin("compliant") with no APK bytes.
	Scenario *Scenario
	// Log receives one line per notable event (connections, faults); nil discards.
	Log func(string)
}

// CheckPorts reports whether n devices can number their ports from base: adb on base+2i, fastboot
// on base+2i+1, within 1024-65535 and outside 5555-5585 (scanned by the adb server for
// emulators). A base of 0 (free ports) is always fine.
func CheckPorts(base, n int) error {
	if base == 0 {
		return nil
	}
	last := base + 2*n - 1
	if base < 1024 || last > 65535 {
		return fmt.Errorf("ports %d-%d out of range 1024-65535; choose another base port, or 0 for free ports", base, last)
	}
	if base <= reservedHigh && last >= reservedLow {
		return fmt.Errorf("ports %d-%d overlap %d-%d, which the adb server scans for emulators; choose another base port, or 0 for free ports", base, last, reservedLow, reservedHigh)
	}
	return nil
}

// Simulator is a set of running simulated devices.
type Simulator struct {
	devices []*Device
}

// Start builds every device from the scenario and starts its servers on loopback.
func Start(ctx context.Context, o Options) (*Simulator, error) {
	if o.Devices <= 0 || o.Devices > MaxDevices {
		return nil, fmt.Errorf("starting simulator: %d devices, use 1 to %d", o.Devices, MaxDevices)
	}
	if err := CheckPorts(o.BasePort, o.Devices); err != nil {
		return nil, fmt.Errorf("starting simulator: %w", err)
	}
	sc := o.Scenario
	if sc == nil {
		var err error
		if sc, err = Builtin("compliant", BuiltinAPKs{}); err != nil {
			return nil, err
		}
	}
	s := &Simulator{}
	for i := 0; i < o.Devices; i++ {
		cfg, ad, err := sc.build(i, o.Devices)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("starting simulator: %w", err)
		}
		d := &Device{cfg: cfg, Android: ad, log: o.Log}
		if err := d.initPartitions(); err != nil {
			d.fb.closePartitions()
			s.Close()
			return nil, err
		}
		adbAddr, fbAddr := "127.0.0.1:0", "127.0.0.1:0"
		if o.BasePort != 0 {
			adbAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.BasePort+2*i))
			fbAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.BasePort+2*i+1))
		}
		if err := d.start(ctx, adbAddr, fbAddr); err != nil {
			d.fb.closePartitions()
			s.Close()
			return nil, err
		}
		s.devices = append(s.devices, d)
	}
	return s, nil
}

// Devices returns the running devices in order.
func (s *Simulator) Devices() []*Device { return append([]*Device(nil), s.devices...) }

// Device returns the device with the given serial, or nil.
func (s *Simulator) Device(serial string) *Device {
	for _, d := range s.devices {
		if d.cfg.Serial == serial {
			return d
		}
	}
	return nil
}

// Close stops every device.
func (s *Simulator) Close() error {
	var errs []error
	for _, d := range s.devices {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}
