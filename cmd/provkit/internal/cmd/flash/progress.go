package flash

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/provkit/provkit/internal/termtext"
	pflash "github.com/provkit/provkit/provision/flash"
)

// progress shows a flash on stderr: on a terminal one bar per device (its total is every byte its
// plan sends, its label the step running); otherwise one plain line per step; nothing with --json.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	bars *mpb.Progress // nil: plain lines
	off  bool
}

func newProgress(w io.Writer, tty, quiet bool) *progress {
	p := &progress{w: w, off: quiet}
	if tty && !quiet {
		p.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	}
	return p
}

// device returns the callback for one device's run and a function to call when it ends (ok or not).
func (p *progress) device(name string, plan *pflash.Plan) (func(pflash.Event), func(ok bool)) {
	name = termtext.Visible(name)
	if p.off {
		return func(pflash.Event) {}, func(bool) {}
	}
	if p.bars == nil {
		return func(ev pflash.Event) {
			if ev.Done || ev.Sent != 0 {
				return
			}
			p.mu.Lock()
			fmt.Fprintf(p.w, "%s [%d/%d] %s\n", name, ev.Index+1, ev.Steps, termtext.Visible(ev.Command))
			p.mu.Unlock()
		}, func(bool) {}
	}
	var total int64
	for _, s := range plan.Steps {
		if s.Image != nil {
			total += s.Image.Size
		}
	}
	var mu sync.Mutex
	step := "connecting"
	label := decor.Any(func(decor.Statistics) string {
		mu.Lock()
		defer mu.Unlock()
		return step
	}, decor.WCSyncSpaceR)
	// Made with total 0 and given its total after: mpb then never completes the bar by itself when
	// the last byte is counted, which would draw its last frame before the end's "done" (a race
	// TestFlashBarsOnATerminal caught); the end completes it.
	bar := p.bars.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), label),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)),
	)
	bar.SetTotal(max(total, 1), false)
	var base int64 // bytes of the finished steps
	return func(ev pflash.Event) {
			mu.Lock()
			if ev.Sent == 0 && !ev.Done {
				step = fmt.Sprintf("%d/%d %s", ev.Index+1, ev.Steps, termtext.Visible(shortCommand(ev.Command)))
			}
			if ev.Done {
				base += ev.Total
				bar.SetCurrent(base)
			} else {
				bar.SetCurrent(base + ev.Sent)
			}
			mu.Unlock()
		}, func(ok bool) {
			mu.Lock()
			if ok {
				step = "done"
				bar.SetTotal(-1, true)
			} else {
				step = "FAILED"
				bar.Abort(false)
			}
			mu.Unlock()
		}
}

// shortCommand drops the image path from a step ("flash system_a /long/path/system.img" →
// "flash system_a") so that a bar's label stays short.
func shortCommand(c string) string {
	n := 0
	for i, r := range c {
		if r == ' ' {
			n++
			if n == 2 {
				return c[:i]
			}
		}
	}
	return c
}

// wait lets the bars draw their last state.
func (p *progress) wait() {
	if p.bars != nil {
		p.bars.Wait()
	}
}
