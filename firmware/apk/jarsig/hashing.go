package jarsig

import (
	"crypto"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// bufSize is the read size for entry data: large enough that per-call overhead vanishes next to
// hashing, small enough to stay in cache.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// hashSet keeps one reusable hasher per algorithm for the duration of a Verify call.
type hashSet struct{ m map[crypto.Hash]hash.Hash }

func newHashSet() *hashSet { return &hashSet{m: map[crypto.Hash]hash.Hash{}} }

func (hs *hashSet) get(h crypto.Hash) hash.Hash {
	d, ok := hs.m[h]
	if !ok {
		d = newHash(h)
		hs.m[h] = d
	}
	d.Reset()
	return d
}

// checkEvery is how often (in bytes) digestEntry checks for cancellation.
const checkEvery = 16 << 20

// digestEntry reads an entry once and returns one digest per wanted algorithm, in order.
func (v *verifier) digestEntry(e Entry, name string, want []namedDigest) ([][]byte, error) {
	if err := v.ctx.Err(); err != nil {
		return nil, err
	}
	hs := make([]hash.Hash, 0, len(want))
	for _, d := range want {
		dup := false
		for _, h := range hs {
			if h == v.hashes.m[d.hash] {
				dup = true
			}
		}
		if !dup {
			hs = append(hs, v.hashes.get(d.hash))
		}
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer rc.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	size := e.UncompressedSize()
	var total uint64
	var sinceCheck int
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			total += uint64(n)
			if total > size {
				return nil, fmt.Errorf("%w: %s holds more than its declared %d bytes", ErrFormat, name, size)
			}
			for _, h := range hs {
				h.Write(buf[:n])
			}
			if sinceCheck += n; sinceCheck >= checkEvery {
				sinceCheck = 0
				if err := v.ctx.Err(); err != nil {
					return nil, err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if total != size {
		return nil, fmt.Errorf("%w: %s holds %d bytes, %d declared", ErrFormat, name, total, size)
	}
	out := make([][]byte, len(want))
	for i, d := range want {
		out[i] = v.hashes.m[d.hash].Sum(nil)
	}
	return out, nil
}
