package imagepatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// runningDigest is the SHA-256 of a file being written: its first bytes (already final) hashed in
// the background, then continued to wherever the file ends.
type runningDigest struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
	h      hash.Hash
	upTo   int64 // bytes hashed once done
}

// startDigest hashes r[0:n] in the background.
func startDigest(ctx context.Context, r io.ReaderAt, n int64) *runningDigest {
	ctx, cancel := context.WithCancel(ctx)
	d := &runningDigest{ctx: ctx, cancel: cancel, done: make(chan error, 1), h: sha256.New(), upTo: n}
	go func() { d.done <- feed(ctx, d.h, r, 0, n) }()
	return d
}

// finish waits for the background part and hashes r[upTo:end] (continuing from where the last
// finish stopped, so it may be called again with a larger end).
func (d *runningDigest) finish(r io.ReaderAt, end int64) (string, error) {
	if d.done != nil {
		err := <-d.done
		d.done = nil
		if err != nil {
			return "", err
		}
	}
	if end > d.upTo {
		if err := feed(d.ctx, d.h, r, d.upTo, end-d.upTo); err != nil {
			return "", err
		}
		d.upTo = end
	}
	return hex.EncodeToString(d.h.Sum(nil)), nil
}

// stop ends the background part (if finish was not called) and waits for it.
func (d *runningDigest) stop() {
	d.cancel()
	if d.done != nil {
		<-d.done
		d.done = nil
	}
}

// feed writes r[off:off+n] into h, noticing ctx.
func feed(ctx context.Context, h hash.Hash, r io.ReaderAt, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(int64(len(buf)), n)
		m, err := r.ReadAt(buf[:k], off)
		if int64(m) < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		h.Write(buf[:k])
		off += k
		n -= k
	}
	return nil
}
