package avb

import (
	"context"
	"fmt"
	"io"
)

// FEC (forward error correction) for dm-verity, as libfec, avbtool and update_engine compute it:
// Reed-Solomon RS(255, 255-roots) over GF(2^8) (polynomial 0x11d, first consecutive root 0,
// primitive element 1). The data (a partition's data blocks followed by its hash tree) is split into
// rounds = ceil(blocks / (255-roots)) rounds; codeword k of round i takes byte k of the blocks at
// byte offsets i*blockSize + j*rounds*4096 (j = 0..254-roots, blocks past the end read as zeros), and
// its roots parity bytes go to offset (i*blockSize + k)*roots of the FEC area.

const (
	fecRSM       = 255
	fecBlockSize = 4096 // the interleaving stride libfec uses whatever the block size
	// MaxBuiltFEC bounds the FEC data BuildFEC keeps in memory (about 0.8% of the data with 2 roots).
	MaxBuiltFEC = 256 << 20
)

type rsCode struct {
	alphaTo, indexOf [256]int
	genpoly          []int // index form
	roots            int
}

func newRS(roots int) *rsCode {
	const a0 = fecRSM // log of zero
	c := &rsCode{roots: roots}
	c.indexOf[0] = a0
	c.alphaTo[a0] = 0
	sr := 1
	for i := 0; i < fecRSM; i++ {
		c.indexOf[sr] = i
		c.alphaTo[i] = sr
		sr <<= 1
		if sr&0x100 != 0 {
			sr ^= 0x11d
		}
		sr &= fecRSM
	}
	g := make([]int, roots+1)
	g[0] = 1
	for i, root := 0, 0; i < roots; i, root = i+1, root+1 { // fcr 0, prim 1
		g[i+1] = 1
		for j := i; j > 0; j-- {
			if g[j] != 0 {
				g[j] = g[j-1] ^ c.alphaTo[(c.indexOf[g[j]]+root)%fecRSM]
			} else {
				g[j] = g[j-1]
			}
		}
		g[0] = c.alphaTo[(c.indexOf[g[0]]+root)%fecRSM]
	}
	for i := range g {
		g[i] = c.indexOf[g[i]]
	}
	c.genpoly = g
	return c
}

// step feeds one data symbol into a codeword's parity state (the systematic encoder's shift register).
func (c *rsCode) step(parity []byte, d byte) {
	const a0 = fecRSM
	n := c.roots
	fb := c.indexOf[d^parity[0]]
	if fb != a0 {
		for j := 1; j < n; j++ {
			parity[j] ^= byte(c.alphaTo[(fb+c.genpoly[n-j])%fecRSM])
		}
	}
	copy(parity, parity[1:n])
	if fb != a0 {
		parity[n-1] = byte(c.alphaTo[(fb+c.genpoly[0])%fecRSM])
	} else {
		parity[n-1] = 0
	}
}

// FECSize returns the size of the FEC data of dataSize bytes (rounds × roots × blockSize).
func FECSize(dataSize uint64, roots int, blockSize uint32) uint64 {
	rsn := uint64(fecRSM - roots)
	blocks := dataSize / uint64(blockSize)
	return (blocks + rsn - 1) / rsn * uint64(roots) * uint64(blockSize)
}

// BuildFEC computes the FEC data of r[:dataSize] reading r once, sequentially: every codeword's
// parity advances as its data blocks stream by, so memory is the FEC size itself.
func BuildFEC(ctx context.Context, r io.ReaderAt, dataSize uint64, roots int, blockSize uint32) ([]byte, error) {
	if roots < 2 || roots > 24 {
		return nil, fmt.Errorf("building FEC: %d roots, libfec accepts 2 to 24", roots)
	}
	if blockSize != fecBlockSize {
		return nil, fmt.Errorf("building FEC: block size %d, only %d is supported", blockSize, fecBlockSize)
	}
	if dataSize%uint64(blockSize) != 0 {
		return nil, fmt.Errorf("building FEC: data size %d is not a multiple of the block size %d", dataSize, blockSize)
	}
	size := FECSize(dataSize, roots, blockSize)
	if size > MaxBuiltFEC {
		return nil, fmt.Errorf("building FEC: %d bytes of FEC exceed the %d kept in memory", size, MaxBuiltFEC)
	}
	rs := newRS(roots)
	bs := uint64(blockSize)
	rsn := uint64(fecRSM - roots)
	blocks := dataSize / bs
	rounds := (blocks + rsn - 1) / rsn
	fec := make([]byte, size)
	buf := make([]byte, 1<<20)
	feed := func(b uint64, data []byte) {
		// Block b lies at offset b*4096 = i*4096 + j*rounds*4096: round i, column j.
		i := b % rounds
		state := fec[i*bs*uint64(roots) : (i+1)*bs*uint64(roots)]
		for k := uint64(0); k < bs; k++ {
			var d byte
			if data != nil {
				d = data[k]
			}
			rs.step(state[k*uint64(roots):(k+1)*uint64(roots)], d)
		}
	}
	for off := uint64(0); off < dataSize; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := buf[:min(uint64(len(buf)), dataSize-off)]
		if m, err := r.ReadAt(c, int64(off)); m < len(c) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("building FEC: reading offset %d: %w", off+uint64(m), err)
		}
		for p := uint64(0); p < uint64(len(c)); p += bs {
			feed((off+p)/bs, c[p:p+bs])
		}
		off += uint64(len(c))
	}
	// The last column's missing blocks are zeros, fed in order after the real ones.
	for b := blocks; b < rounds*rsn; b++ {
		feed(b, nil)
	}
	return fec, nil
}
