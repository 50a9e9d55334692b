package flash

import (
	"context"
	"sync"
)

// eachDevice runs do(i) for i in [0, n), at most jobs at once, and returns when all have ended.
// A device still waiting for its turn when ctx ends is not started: notStarted(i, err) records it.
func eachDevice(ctx context.Context, n, jobs int, do func(i int), notStarted func(i int, err error)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(jobs, 1))
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				notStarted(i, ctx.Err())
				return
			}
			defer func() { <-sem }()
			do(i)
		}()
	}
	wg.Wait()
}
