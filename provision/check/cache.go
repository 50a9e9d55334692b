package check

import (
	"context"
	"sync"

	"github.com/provkit/provkit/manifests/policy"
)

// Cache holds the facts of the APKs verified in one run, keyed by the SHA-256 of their bytes as computed on the
// host. It is safe for concurrent use: when several devices claim the same digest at once, one
// pulls and verifies while the others wait for its result.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	done chan struct{}
	res  *policy.APKFacts // nil until verified (or when the owner failed)
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{entries: map[string]*cacheEntry{}} }

// claim returns the verified result for digest, waiting for a verification in progress. When
// nobody has verified it yet, it returns owner=true and a release function the caller must call
// with its result (nil if it could not verify the APK, or if the bytes it pulled had another
// digest).
func (c *Cache) claim(ctx context.Context, digest string) (res *policy.APKFacts, owner bool, release func(*policy.APKFacts), err error) {
	for {
		c.mu.Lock()
		e, ok := c.entries[digest]
		if !ok {
			e = &cacheEntry{done: make(chan struct{})}
			c.entries[digest] = e
			c.mu.Unlock()
			return nil, true, func(r *policy.APKFacts) {
				c.mu.Lock()
				if r != nil {
					e.res = r
				} else {
					delete(c.entries, digest) // let the next device try
				}
				c.mu.Unlock()
				close(e.done)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, false, nil, ctx.Err()
		}
		c.mu.Lock()
		r := e.res
		c.mu.Unlock()
		if r != nil {
			return r, false, nil, nil
		}
		// The owner failed; try to become the owner.
	}
}

// store records a result verified from bytes whose digest is known.
func (c *Cache) store(digest string, r *policy.APKFacts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[digest]; ok {
		select {
		case <-e.done:
			if e.res == nil {
				e.res = r
			}
		default: // someone is verifying it now; their result will do
		}
		return
	}
	e := &cacheEntry{done: make(chan struct{}), res: r}
	close(e.done)
	c.entries[digest] = e
}

// Len returns the number of verified APKs held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.entries {
		if e.res != nil {
			n++
		}
	}
	return n
}
