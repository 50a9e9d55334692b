package counter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/check"
	"github.com/provkit/provkit/provision/line"
)

// Config is what Run needs.
type Config struct {
	Policy  *policy.Policy
	Sources []line.Source
	Timeout time.Duration // per phone
	PullAll bool
	// Jobs bounds the phones checked at once (a counter rarely has more than a few plugged in).
	Jobs int
	// Events receives every event, one at a time, in order (never concurrently).
	Events func(Event)
}

// Kinds of Event.
const (
	EventWaiting  = "waiting"  // a phone is present but cannot be checked yet (unauthorized, offline)
	EventChecking = "checking" // a phone arrived and is being checked
	EventVerdict  = "verdict"  // a phone's check finished: Result holds it
	EventGone     = "gone"     // a phone was unplugged
	// EventSourceError: a source of phones failed (the adb server went away); it is retried.
	EventSourceError = "source-error"
)

// Event is something that happened at the counter.
type Event struct {
	Kind   string
	Key    string        // the phone as its source names it
	Why    string        // for EventWaiting
	Result *check.Result // for EventVerdict
}

// Tally counts the verdicts of a session.
type Tally struct {
	Pass, Fail, Error int
}

// Total is the number of verdicts.
func (t Tally) Total() int { return t.Pass + t.Fail + t.Error }

type phoneState struct {
	present  bool
	running  bool
	checked  bool // checked since it was plugged in: not again until it is unplugged
	lastWait string
}

// Run serves the counter until ctx is done (Ctrl-C is the normal end), then waits for the checks
// under way. It returns the tally and ctx's error.
func Run(ctx context.Context, cfg Config) (Tally, error) {
	if cfg.Jobs <= 0 {
		cfg.Jobs = 4
	}
	if len(cfg.Sources) == 0 {
		return Tally{}, errors.New("no source of phones")
	}
	emit := cfg.Events
	if emit == nil {
		emit = func(Event) {}
	}
	presence := make(chan line.Presence)
	problems := make(chan error)
	var srcWG sync.WaitGroup
	for _, s := range cfg.Sources {
		srcWG.Add(1)
		go func(s line.Source) { defer srcWG.Done(); watch(ctx, s, presence, problems) }(s)
	}
	defer srcWG.Wait()
	type done struct {
		key string
		res check.Result
	}
	results := make(chan done)
	sem := make(chan struct{}, cfg.Jobs)
	var wg sync.WaitGroup
	defer wg.Wait()
	phones := map[string]*phoneState{}
	var tally Tally
	running := 0
	start := func(p line.Phone) {
		running++
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r check.Result
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				t := check.Target{Serial: p.Key, Connect: p.Connect}
				rs, err := check.Run(ctx, []check.Target{t}, check.Options{Policy: cfg.Policy, Jobs: 1, Timeout: cfg.Timeout, PullAll: cfg.PullAll})
				switch {
				case err != nil:
					r = check.Result{Serial: p.Key, Verdict: check.VerdictError, Reasons: []string{err.Error()}}
				case len(rs) == 0:
					r = check.Result{Serial: p.Key, Verdict: check.VerdictError, Reasons: []string{"no result"}}
				default:
					r = rs[0]
				}
			case <-ctx.Done():
				r = check.Result{Serial: p.Key, Verdict: check.VerdictError, Reasons: []string{"interrupted"}}
			}
			results <- done{p.Key, r}
		}()
	}
	ctxDone := ctx.Done()
	for {
		if ctxDone == nil && running == 0 {
			return tally, ctx.Err()
		}
		select {
		case p := <-presence:
			st := phones[p.Phone.Key]
			if st == nil {
				st = &phoneState{}
				phones[p.Phone.Key] = st
			}
			switch {
			case p.Present:
				st.present, st.lastWait = true, ""
				if !st.running && !st.checked && ctxDone != nil {
					st.running = true
					emit(Event{Kind: EventChecking, Key: p.Phone.Key})
					start(p.Phone)
				}
			case p.Waiting != "":
				st.present = true
				if p.Waiting != st.lastWait {
					st.lastWait = p.Waiting
					emit(Event{Kind: EventWaiting, Key: p.Phone.Key, Why: p.Waiting})
				}
			default:
				if st.present || st.checked {
					emit(Event{Kind: EventGone, Key: p.Phone.Key})
				}
				st.present, st.checked, st.lastWait = false, false, ""
				if !st.running {
					delete(phones, p.Phone.Key)
				}
			}
		case d := <-results:
			running--
			if st := phones[d.key]; st != nil {
				st.running = false
				st.checked = st.present
				if !st.present {
					delete(phones, d.key)
				}
			}
			if ctx.Err() != nil && d.res.Verdict == check.VerdictError {
				continue // cut short by Ctrl-C: no verdict on the phone
			}
			switch d.res.Verdict {
			case check.VerdictPass:
				tally.Pass++
			case check.VerdictFail:
				tally.Fail++
			default:
				tally.Error++
			}
			r := d.res
			emit(Event{Kind: EventVerdict, Key: d.key, Result: &r})
		case err := <-problems:
			emit(Event{Kind: EventSourceError, Why: err.Error()})
		case <-ctxDone:
			ctxDone = nil
		}
	}
}

// watch runs a source until ctx is done, restarting it with a backoff when it fails (an adb server
// restarted); each failure is reported on problems.
func watch(ctx context.Context, s line.Source, ch chan<- line.Presence, problems chan<- error) {
	backoff := 500 * time.Millisecond
	for {
		err := s.Watch(ctx, ch)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		select {
		case problems <- fmt.Errorf("watching %s: %w; retrying in %s", s, err, backoff):
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}
