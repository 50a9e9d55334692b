package flash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/provkit/provkit/provision/fastboot"
)

// Dialer opens a fastboot session with the one device a run is for. Run calls it again after each
// reboot, until the device answers or the context ends.
type Dialer func(ctx context.Context) (*fastboot.Client, error)

// Event tells a progress callback where a run is: step Index of Steps is Command; Sent of Total
// bytes of its image went out (both 0 for steps without data).
type Event struct {
	Index, Steps int
	Command      string
	Sent, Total  int64
	Done         bool
}

// StepResult is the evidence of one step.
type StepResult struct {
	Command   string `json:"command"`
	Partition string `json:"partition,omitempty"`
	// Bytes and SHA256 describe the image file that was sent (before any sparse re-split).
	Bytes    int64         `json:"bytes,omitempty"`
	SHA256   string        `json:"sha256,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// Result is what Run did to one device.
type Result struct {
	Steps    []StepResult  `json:"steps"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
}

// RunOptions tune Run.
type RunOptions struct {
	// RebootTimeout bounds the wait for a device to come back after a reboot (default 2 minutes).
	RebootTimeout time.Duration
	// MaxDownload overrides the device's max-download-size (0: ask the device).
	MaxDownload int64
}

// Run executes plan on one device, stopping at the first failing step. It returns the steps done
// (and the failing one) with their evidence; the error names the step and partition.
func Run(ctx context.Context, dial Dialer, plan *Plan, opts RunOptions, progress func(Event)) (*Result, error) {
	if opts.RebootTimeout <= 0 {
		opts.RebootTimeout = 2 * time.Minute
	}
	if progress == nil {
		progress = func(Event) {}
	}
	start := time.Now()
	res := &Result{}
	c, err := dial(ctx)
	if err != nil {
		return res, fmt.Errorf("connecting: %w", err)
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for i, st := range plan.Steps {
		cmd := st.Command()
		t0 := time.Now()
		sr := StepResult{Command: cmd, Partition: st.Partition}
		progress(Event{Index: i, Steps: len(plan.Steps), Command: cmd})
		err := runStep(ctx, &c, dial, st, &sr, opts, func(sent, total int64) {
			progress(Event{Index: i, Steps: len(plan.Steps), Command: cmd, Sent: sent, Total: total})
		})
		sr.Duration = time.Since(t0)
		if err != nil {
			sr.Error = err.Error()
		}
		res.Steps = append(res.Steps, sr)
		res.Bytes += sr.Bytes
		res.Duration = time.Since(start)
		if err != nil {
			return res, fmt.Errorf("step %d of %d (%s): %w", i+1, len(plan.Steps), cmd, err)
		}
		progress(Event{Index: i, Steps: len(plan.Steps), Command: cmd, Sent: sr.Bytes, Total: sr.Bytes, Done: true})
	}
	return res, nil
}

func runStep(ctx context.Context, c **fastboot.Client, dial Dialer, st Step, sr *StepResult, opts RunOptions, sent func(n, total int64)) (stepErr error) {
	switch st.Kind {
	case StepFlash, StepUpdateSuper:
		r, err := st.Image.Open()
		if err != nil {
			return fmt.Errorf("opening %s: %w", st.Image.Path, err)
		}
		defer r.Close()
		// The image's SHA-256 (the evidence of what was sent) is computed beside the transfer,
		// once per image however many devices get it.
		type digest struct {
			sum string
			err error
		}
		hashed := make(chan digest, 1)
		go func() {
			sum, err := st.Image.SHA256()
			hashed <- digest{sum, err}
		}()
		defer func() {
			var d digest
			select {
			case d = <-hashed:
			case <-ctx.Done(): // interrupted: do not wait for the rest of a large image to be hashed
				select {
				case d = <-hashed:
				default:
					d.err = ctx.Err()
				}
			}
			sr.SHA256 = d.sum
			if stepErr == nil && d.err != nil {
				stepErr = fmt.Errorf("hashing what was sent: %w", d.err)
			}
		}()
		if st.Kind == StepUpdateSuper {
			if err := (*c).Download(ctx, io.NewSectionReader(r, 0, st.Image.Size), st.Image.Size); err != nil {
				return fmt.Errorf("sending %s: %w", st.Image.Path, err)
			}
			cmd := "update-super:" + st.Partition
			if st.Wipe {
				cmd += ":wipe"
			}
			if _, err := (*c).Command(ctx, cmd); err != nil {
				return err
			}
			sr.Bytes = st.Image.Size
			sent(sr.Bytes, sr.Bytes)
			return nil
		}
		var before, done int64 // bytes of the download stream sent before the current piece, and with it
		err = (*c).Flash(ctx, st.Partition, r, st.Image.Size, fastboot.FlashOptions{MaxDownload: opts.MaxDownload,
			OnPiece: func(i, n int, size int64) { sent(done, st.Image.Size); before = done; done += size }})
		if err != nil {
			return fmt.Errorf("partition %s, in the download that starts at byte %d of what is sent: %w", st.Partition, before, err)
		}
		sr.Bytes = st.Image.Size
		return nil
	case StepErase:
		return (*c).Erase(ctx, st.Partition)
	case StepResize:
		_, err := (*c).Command(ctx, fmt.Sprintf("resize-logical-partition:%s:%d", st.Partition, st.Size))
		return err
	case StepSetActive:
		return (*c).SetActive(ctx, st.Target)
	case StepReboot:
		if err := (*c).Reboot(ctx, fastboot.RebootTarget(st.Target)); err != nil {
			return err
		}
		// Wait for the device to drop this session before dialing again (bounded: a device that
		// keeps it open is dialed anyway).
		(*c).WaitGone(10 * time.Second)
		(*c).Close()
		*c = nil
		if st.Target == "" {
			return nil // booting the system: no fastboot session to come back to
		}
		nc, err := redial(ctx, dial, opts.RebootTimeout)
		if err != nil {
			return fmt.Errorf("waiting for the device after reboot %s: %w", st.Target, err)
		}
		*c = nc
		return checkMode(ctx, nc, st.Target)
	}
	return fmt.Errorf("unknown step kind %q", st.Kind)
}

// ErrWrongMode is returned when a device comes back from a reboot in another mode than asked.
var ErrWrongMode = errors.New("device came back in the wrong mode")

func checkMode(ctx context.Context, c *fastboot.Client, target string) error {
	v, err := c.GetVar(ctx, "is-userspace")
	userspace := err == nil && v == "yes"
	switch {
	case target == "fastboot" && !userspace:
		return fmt.Errorf("asked for fastbootd, is-userspace=%q: %w", v, ErrWrongMode)
	case target == "bootloader" && userspace:
		return fmt.Errorf("asked for the bootloader, got fastbootd: %w", ErrWrongMode)
	}
	return nil
}

func redial(ctx context.Context, dial Dialer, timeout time.Duration) (*fastboot.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		c, err := dial(ctx)
		if err == nil {
			return c, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
