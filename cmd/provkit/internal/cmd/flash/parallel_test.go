package flash

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEachDeviceBoundAndCancel: at most jobs devices run at once; when the context ends, the
// devices still waiting are recorded as not started and never run.
func TestEachDeviceBoundAndCancel(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	ran, skipped := map[int]bool{}, map[int]bool{}
	started := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		eachDevice(ctx, 10, 3, func(i int) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			mu.Lock()
			ran[i] = true
			mu.Unlock()
			started <- struct{}{}
			<-release
			running.Add(-1)
		}, func(i int, err error) {
			if err == nil {
				t.Error("not started without an error")
			}
			mu.Lock()
			skipped[i] = true
			mu.Unlock()
		})
		close(done)
	}()
	for range 3 {
		<-started
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // let the waiting devices see the cancel while every slot is taken
	close(release)
	<-done
	if peak.Load() != 3 {
		t.Errorf("peak concurrency %d, want 3", peak.Load())
	}
	if len(ran)+len(skipped) != 10 || len(skipped) == 0 {
		t.Errorf("ran %d, not started %d: want 10 in all, some not started", len(ran), len(skipped))
	}
	for i := range ran {
		if skipped[i] {
			t.Errorf("device %d both ran and was skipped", i)
		}
	}
}
