package adb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// EventKind says what happened to a device in a DeviceEvent.
type EventKind string

// Kinds of device events.
const (
	DeviceAdded   EventKind = "added"   // the device appeared (also sent for every device present at the start)
	DeviceRemoved EventKind = "removed" // the device left; Device holds its last known info
	DeviceChanged EventKind = "changed" // the device's state (or its -l fields) changed
)

// DeviceEvent is one change in the server's device list.
type DeviceEvent struct {
	Kind     EventKind  `json:"type"`
	Device   DeviceInfo `json:"device"`
	OldState State      `json:"oldState,omitempty"` // for DeviceChanged and DeviceRemoved
}

// Tracker delivers device events from host:track-devices-l until its context is cancelled or the
// server goes away.
type Tracker struct {
	// C receives the events in order; it is closed when tracking ends.
	C    <-chan DeviceEvent
	err  error
	done chan struct{}
	stop context.CancelFunc
}

// Err returns why tracking ended (the context's error after cancellation, or the connection
// error); it blocks until C is closed.
func (t *Tracker) Err() error {
	<-t.done
	return t.err
}

// Close stops tracking and waits for it to end.
func (t *Tracker) Close() {
	t.stop()
	<-t.done
}

// TrackDevices follows the server's device list. It first sends DeviceAdded for every device
// present, then one event per change. Events are delivered in order; a consumer that does not read
// C stalls the tracker (not the server). Cancel ctx or call Close to stop.
func (s *Server) TrackDevices(ctx context.Context) (*Tracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	open := func(req string) (*hostConn, error) {
		c, err := s.dial(ctx)
		if err != nil {
			return nil, err
		}
		if err = c.send(req); err == nil {
			err = c.status(req)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c, err := open("host:track-devices-l")
	var fe *FailError
	if errors.As(err, &fe) {
		// A server older than the -l variant: the short form carries serial and state only.
		c, err = open("host:track-devices")
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("tracking devices: %w", err)
	}
	ch := make(chan DeviceEvent)
	t := &Tracker{C: ch, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(t.done)
		defer close(ch)
		defer cancel()
		defer c.Close()
		t.err = trackLoop(ctx, c, ch)
	}()
	return t, nil
}

func trackLoop(ctx context.Context, c *hostConn, ch chan<- DeviceEvent) error {
	known := map[string]DeviceInfo{}
	for {
		msg, err := c.readString()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("tracking devices: the adb server stopped answering: %w", err)
		}
		devs, err := ParseDevices(msg)
		if err != nil {
			return fmt.Errorf("tracking devices: %w", err)
		}
		for _, ev := range DiffDevices(known, devs) {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		known = map[string]DeviceInfo{}
		for _, d := range devs {
			known[d.Serial] = d
		}
	}
}

// DiffDevices returns the events that turn the device set old into now: removals first, then
// additions and changes, each sorted by serial.
func DiffDevices(old map[string]DeviceInfo, now []DeviceInfo) []DeviceEvent {
	var evs []DeviceEvent
	seen := map[string]bool{}
	for _, d := range now {
		seen[d.Serial] = true
	}
	var gone []string
	for s := range old {
		if !seen[s] {
			gone = append(gone, s)
		}
	}
	sort.Strings(gone)
	for _, s := range gone {
		evs = append(evs, DeviceEvent{Kind: DeviceRemoved, Device: old[s], OldState: old[s].State})
	}
	sorted := append([]DeviceInfo(nil), now...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Serial < sorted[j].Serial })
	for i, d := range sorted {
		if i > 0 && sorted[i-1].Serial == d.Serial {
			continue // a server never lists a serial twice; keep the first
		}
		prev, ok := old[d.Serial]
		switch {
		case !ok:
			evs = append(evs, DeviceEvent{Kind: DeviceAdded, Device: d})
		case !sameInfo(prev, d):
			evs = append(evs, DeviceEvent{Kind: DeviceChanged, Device: d, OldState: prev.State})
		}
	}
	return evs
}

func sameInfo(a, b DeviceInfo) bool {
	if a.State != b.State || a.StateDetail != b.StateDetail || a.DevPath != b.DevPath || a.Product != b.Product ||
		a.Model != b.Model || a.Device != b.Device || a.TransportID != b.TransportID || len(a.Extra) != len(b.Extra) {
		return false
	}
	for k, v := range a.Extra {
		if w, ok := b.Extra[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// WaitFor blocks until the server lists serial in one of the wanted states (StateDevice when none
// are given), and returns its info. It fails with ctx's error (naming the last state seen) when
// the context ends first.
func (s *Server) WaitFor(ctx context.Context, serial string, want ...State) (DeviceInfo, error) {
	if len(want) == 0 {
		want = []State{StateDevice}
	}
	t, err := s.TrackDevices(ctx)
	if err != nil {
		return DeviceInfo{}, err
	}
	defer t.Close()
	last := StateGone
	for ev := range t.C {
		if ev.Device.Serial != serial {
			continue
		}
		if ev.Kind == DeviceRemoved {
			last = StateGone
			continue
		}
		last = ev.Device.State
		for _, w := range want {
			if last == w {
				return ev.Device, nil
			}
		}
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = string(w)
	}
	err = t.Err()
	return DeviceInfo{}, &DeviceError{Op: "waiting for state " + strings.Join(names, " or "), Serial: serial, State: last, Err: err}
}
