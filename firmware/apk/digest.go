package apk

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

const chunkSize = 1 << 20 // content digests hash the APK in 1 MiB chunks

// segment is a byte range to digest: a range of the file, or bytes in memory (the patched EOCD).
type segment struct {
	r    io.ReaderAt
	off  int64
	size int64
	mem  []byte
}

func (s segment) readAt(p []byte, off int64) error {
	if s.mem != nil {
		copy(p, s.mem[off:])
		return nil
	}
	_, err := s.r.ReadAt(p, s.off+off)
	if errors.Is(err, io.EOF) {
		return formatErr(s.off+off, "file ends early")
	}
	return err
}

// chunkTask names one 1 MiB chunk of a segment.
type chunkTask struct {
	seg int
	off int64
	n   int
}

func splitChunks(segs []segment, size int64) []chunkTask {
	var out []chunkTask
	for i, s := range segs {
		for off := int64(0); off < s.size; off += size {
			n := s.size - off
			if n > size {
				n = size
			}
			out = append(out, chunkTask{seg: i, off: off, n: int(n)})
		}
	}
	return out
}

func maxChunk(tasks []chunkTask) int {
	m := 0
	for _, t := range tasks {
		m = max(m, t.n)
	}
	return m
}

func newHash(d digestAlg) hash.Hash {
	if d == chunkedSHA512 {
		return sha512.New()
	}
	return sha256.New()
}

// workers is how many goroutines hash at once: one per CPU the process may use.
func workers() int {
	n := runtime.GOMAXPROCS(0)
	if n < 1 {
		n = 1
	}
	return n
}

// chunkedDigests computes the CHUNKED_SHA256/CHUNKED_SHA512 content digests of segs in one read of
// the data, every worker hashing whole chunks for all requested algorithms:
//
//	chunk digest = H(0xa5 || uint32le(len) || chunk)
//	digest       = H(0x5a || uint32le(number of chunks) || chunk digests in order)
func chunkedDigests(ctx context.Context, segs []segment, algs []digestAlg) (map[digestAlg][]byte, error) {
	tasks := splitChunks(segs, chunkSize)
	if len(tasks) > 1<<31-1 {
		return nil, formatErr(-1, "input too long: %d chunks", len(tasks))
	}
	sums := make([][]byte, len(algs))
	for i, a := range algs {
		sums[i] = make([]byte, len(tasks)*newHash(a).Size())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers())
	for w := 0; w < workers(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, maxChunk(tasks))
			hs := make([]hash.Hash, len(algs))
			for i, a := range algs {
				hs[i] = newHash(a)
			}
			var prefix [5]byte
			prefix[0] = 0xa5
			for {
				t := int(next.Add(1) - 1)
				if t >= len(tasks) {
					return
				}
				if t%16 == 0 && ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				task := tasks[t]
				b := buf[:task.n]
				if err := segs[task.seg].readAt(b, task.off); err != nil {
					errs <- fmt.Errorf("reading chunk at offset %d: %w", segs[task.seg].off+task.off, err)
					return
				}
				binary.LittleEndian.PutUint32(prefix[1:], uint32(task.n))
				for i, h := range hs {
					h.Reset()
					h.Write(prefix[:])
					h.Write(b)
					sz := h.Size()
					h.Sum(sums[i][t*sz : t*sz : (t+1)*sz])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	out := map[digestAlg][]byte{}
	for i, a := range algs {
		h := newHash(a)
		var top [5]byte
		top[0] = 0x5a
		binary.LittleEndian.PutUint32(top[1:], uint32(len(tasks)))
		h.Write(top[:])
		h.Write(sums[i])
		out[a] = h.Sum(nil)
	}
	return out, nil
}

const verityBlock = 4096

// concatSource reads a list of segments as one stream.
type concatSource struct {
	segs []segment
	size int64
}

func newConcat(segs []segment) *concatSource {
	c := &concatSource{segs: segs}
	for _, s := range segs {
		c.size += s.size
	}
	return c
}

// read fills p from stream offset off (p must not run past the end).
func (c *concatSource) read(p []byte, off int64) error {
	for _, s := range c.segs {
		if len(p) == 0 {
			return nil
		}
		if off >= s.size {
			off -= s.size
			continue
		}
		n := s.size - off
		if n > int64(len(p)) {
			n = int64(len(p))
		}
		if err := s.readAt(p[:n], off); err != nil {
			return err
		}
		p = p[n:]
		off = 0
	}
	return nil
}

// verityTree computes the fs-verity style Merkle tree (SHA-256, 4 KiB blocks, the last block of
// each level zero-padded, every hash salted by prefixing salt when salt is non-nil) of the
// concatenation of segs. It returns the root hash and the tree laid out top level first, as in
// .idsig files. Level 0 is hashed in parallel; upper levels are small.
func verityTree(ctx context.Context, segs []segment, salt []byte) (root, tree []byte, err error) {
	src := newConcat(segs)
	blocks := (src.size + verityBlock - 1) / verityBlock
	if blocks == 0 {
		blocks = 1 // an empty input still has one (zero) block
	}
	level0 := make([]byte, roundUp(blocks*32, verityBlock))
	// Hash level 0 in parallel, 1 MiB (256 blocks) per task.
	const span = chunkSize
	tasks := (src.size + span - 1) / span
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers())
	for w := 0; w < workers(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, span)
			h := sha256.New()
			for {
				t := next.Add(1) - 1
				if t >= tasks {
					return
				}
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				off := t * span
				n := src.size - off
				if n > span {
					n = span
				}
				if err := src.read(buf[:n], off); err != nil {
					errs <- fmt.Errorf("reading data at offset %d: %w", off, err)
					return
				}
				padded := roundUp(n, verityBlock)
				clear(buf[n:padded])
				for b := int64(0); b < padded; b += verityBlock {
					h.Reset()
					if salt != nil {
						h.Write(salt)
					}
					h.Write(buf[b : b+verityBlock])
					idx := (off + b) / verityBlock
					h.Sum(level0[idx*32 : idx*32])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, nil, err
	}
	levels := [][]byte{level0}
	cur, curHashes := level0, blocks*32
	for curHashes > verityBlock {
		nb := int64(len(cur)) / verityBlock
		up := make([]byte, roundUp(nb*32, verityBlock))
		h := sha256.New()
		for b := int64(0); b < nb; b++ {
			h.Reset()
			if salt != nil {
				h.Write(salt)
			}
			h.Write(cur[b*verityBlock : (b+1)*verityBlock])
			h.Sum(up[b*32 : b*32])
		}
		levels = append(levels, up)
		cur, curHashes = up, nb*32
	}
	h := sha256.New()
	if salt != nil {
		h.Write(salt)
	}
	h.Write(cur[:verityBlock])
	root = h.Sum(nil)
	for i := len(levels) - 1; i >= 0; i-- {
		tree = append(tree, levels[i]...)
	}
	return root, tree, nil
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }
