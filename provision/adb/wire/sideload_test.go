package wire

import (
	"strings"
	"testing"
)

func TestParseSideloadRequest(t *testing.T) {
	tests := []struct {
		in      string
		kind    SideloadKind
		block   int64
		wantErr string
	}{
		{in: "00000000", kind: SideloadBlock, block: 0},
		{in: "00000023", kind: SideloadBlock, block: 23},
		{in: "99999999", kind: SideloadBlock, block: 99999999},
		{in: "DONEDONE", kind: SideloadOK},
		{in: "FAILFAIL", kind: SideloadFailed},
		{in: "FAIL0012", kind: SideloadFailed},
		{in: "-0000001", wantErr: "neither eight decimal digits"},
		{in: "0000002x", wantErr: `"0000002x"`},
		{in: "    0023", wantErr: "neither"},
		{in: "1234567", wantErr: "7 bytes"},
	}
	for _, tt := range tests {
		r, err := ParseSideloadRequest([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r.Kind != tt.kind || r.Block != tt.block || r.Raw != tt.in {
			t.Errorf("%q: %+v %v", tt.in, r, err)
		}
	}
}

func TestFormatSideloadRequestRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 23, 4096, MaxSideloadBlock} {
		b, err := FormatSideloadRequest(n)
		if err != nil || len(b) != 8 {
			t.Fatalf("%d: %q %v", n, b, err)
		}
		r, err := ParseSideloadRequest(b)
		if err != nil || r.Kind != SideloadBlock || r.Block != n {
			t.Fatalf("%d: %+v %v", n, r, err)
		}
	}
	for _, n := range []int64{-1, MaxSideloadBlock + 1} {
		if _, err := FormatSideloadRequest(n); err == nil {
			t.Errorf("%d: no error", n)
		}
	}
}

func TestParseSideloadService(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		legacy  bool
		h       SideloadHost
		wantErr string
	}{
		{in: "sideload-host:1000:65536", ok: true, h: SideloadHost{1000, 65536}},
		{in: "sideload-host:8589934592:65536", ok: true, h: SideloadHost{8 << 30, 65536}},
		{in: "sideload:4096", ok: true, legacy: true, h: SideloadHost{4096, 0}},
		{in: "shell:ls", ok: false},
		{in: "sideload-host:0:65536", ok: true, wantErr: "must be positive"},
		{in: "sideload-host:8589934593:65536", ok: true, wantErr: "limit"},
		{in: "sideload-host:1000:131072", ok: true, wantErr: "block size 131072"},
		{in: "sideload-host:1000:0", ok: true, wantErr: "block size 0"},
		{in: "sideload-host:1000", ok: true, wantErr: "<size>:<blocksize>"},
		{in: "sideload-host:x:1", ok: true, wantErr: "two decimal numbers"},
		{in: "sideload-host:999999999999:512", ok: true, wantErr: "limit"},
		{in: "sideload:-5", ok: true, legacy: true, wantErr: "must be positive"},
		{in: "sideload:abc", ok: true, legacy: true, wantErr: "decimal size"},
	}
	for _, tt := range tests {
		h, legacy, ok, err := ParseSideloadService(tt.in)
		if ok != tt.ok || legacy != tt.legacy {
			t.Errorf("%q: ok %v legacy %v", tt.in, ok, legacy)
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || h != tt.h {
			t.Errorf("%q: %+v %v", tt.in, h, err)
		}
		if ok && !legacy && h.Service() != tt.in {
			t.Errorf("%q: Service() %q", tt.in, h.Service())
		}
	}
}

// FuzzParseSideloadRequest: the host's parser of what the device sends never panics, and what it
// accepts as a block is exactly eight digits that format back to the same bytes.
func FuzzParseSideloadRequest(f *testing.F) {
	for _, s := range []string{"00000000", "00000023", "DONEDONE", "FAILFAIL", "FAIL\x00\x00\x00\x00", "-0000001", "+0000001", "1e10", "", "999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseSideloadRequest(b)
		if err != nil {
			return
		}
		if len(b) != 8 || r.Raw != string(b) {
			t.Fatalf("accepted %q as %+v", b, r)
		}
		if r.Kind == SideloadBlock {
			back, err := FormatSideloadRequest(r.Block)
			if err != nil || string(back) != string(b) {
				t.Fatalf("%q -> %d -> %q %v", b, r.Block, back, err)
			}
		}
	})
}

// FuzzParseSideloadService: the device's parser of the service name never panics and never
// accepts a size or block size out of bounds.
func FuzzParseSideloadService(f *testing.F) {
	for _, s := range []string{"sideload-host:1000:65536", "sideload:4096", "sideload-host:-1:-1", "sideload-host:1:1:1", "sideload-host:99999999999999999999:1", "sideload:", "shell:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, legacy, ok, err := ParseSideloadService(s)
		if !ok || err != nil {
			return
		}
		if h.Size <= 0 || h.Size > MaxSideloadSize {
			t.Fatalf("%q: size %d accepted", s, h.Size)
		}
		if !legacy && (h.BlockSize < MinSideloadBlockSize || h.BlockSize > MaxSideloadBlockSize || h.Blocks()-1 > MaxSideloadBlock) {
			t.Fatalf("%q: block size %d accepted", s, h.BlockSize)
		}
	})
}
