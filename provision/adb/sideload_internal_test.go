package adb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// scriptStream is a device that says script (then EOF, or blocks until closed when hang) and
// records what the host writes.
type scriptStream struct {
	r       io.Reader
	written bytes.Buffer
	closed  chan struct{}
}

func (s *scriptStream) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *scriptStream) Write(p []byte) (int, error) { return s.written.Write(p) }
func (s *scriptStream) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// scriptTransport opens streams with open; it refuses services open returns nil for.
type scriptTransport struct {
	opened []string
	open   func(service string) (Stream, error)
}

func (t *scriptTransport) Serial() string { return "FAKE1" }
func (t *scriptTransport) Open(ctx context.Context, service string) (Stream, error) {
	t.opened = append(t.opened, service)
	s, err := t.open(service)
	if ss, ok := s.(*scriptStream); ok {
		// As real streams do, the context bounds the stream's life.
		context.AfterFunc(ctx, func() { ss.Close() })
	}
	return s, err
}
func (t *scriptTransport) Features(context.Context) (Features, error) { return Features{}, nil }
func (t *scriptTransport) State(context.Context) (State, error)       { return StateSideload, nil }

// repeatReader returns its pattern forever: a device that keeps asking.
type repeatReader struct{ pat []byte }

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.pat[i%len(r.pat)]
	}
	return len(p) - len(p)%len(r.pat), nil
}

// blockingReader blocks until its stream is closed (a device that says nothing).
type blockingReader struct{ closed chan struct{} }

func (r blockingReader) Read(p []byte) (int, error) { <-r.closed; return 0, ErrClosed }

func sideloadWith(t *testing.T, ctx context.Context, pkg []byte, device io.Reader, opts *SideloadOptions) (*SideloadResult, *scriptStream, error) {
	t.Helper()
	st := &scriptStream{r: device, closed: make(chan struct{})}
	if device == nil {
		st.r = blockingReader{st.closed}
	}
	tr := &scriptTransport{open: func(string) (Stream, error) { return st, nil }}
	res, err := NewDevice(tr).Sideload(ctx, bytes.NewReader(pkg), int64(len(pkg)), opts)
	return res, st, err
}

func TestSideloadServesBlocks(t *testing.T) {
	pkg := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 160000 bytes: blocks 0..2, the last short
	var progress []SideloadProgress
	res, st, err := sideloadWith(t, context.Background(), pkg, strings.NewReader("00000002"+"00000000"+"00000001"+"00000002"+"DONEDONE"),
		&SideloadOptions{Progress: func(p SideloadProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append(append([]byte{}, pkg[131072:]...), pkg[:65536]...), pkg[65536:131072]...), pkg[131072:]...)
	if !bytes.Equal(st.written.Bytes(), want) {
		t.Fatalf("served %d bytes, want the blocks in the order asked (%d bytes)", st.written.Len(), len(want))
	}
	if res.Status != "DONEDONE" || res.BlocksServed != 4 || res.BytesServed != int64(len(want)) || res.Blocks != 3 || res.HighestBlock != 2 ||
		res.SHA256 != fmt.Sprintf("%x", sha256.Sum256(pkg)) {
		t.Fatalf("result %+v", res)
	}
	if len(progress) == 0 || progress[len(progress)-1].Percent != 100 || progress[0].HighestBlock != 2 {
		t.Fatalf("progress %+v", progress)
	}
}

func TestSideloadDeviceFaults(t *testing.T) {
	pkg := make([]byte, 100_000) // blocks 0 and 1
	tests := []struct {
		name    string
		device  string
		wantErr string
		is      error
		status  string
	}{
		{"past the end", "00000002", "asked for block 2, but the 100000-byte package has blocks 0 to 1", nil, ""},
		{"garbage", "0000000x", `"0000000x"`, nil, ""},
		{"failure", "00000000FAILFAIL", "FAILFAIL", ErrSideloadFailed, "FAILFAIL"},
		{"hang up", "0000000", "hung up without DONEDONE", ErrClosed, "closed"},
		{"hang up after a block", "00000001", "after 1 block requests", ErrClosed, "closed"},
	}
	for _, tt := range tests {
		res, _, err := sideloadWith(t, context.Background(), pkg, strings.NewReader(tt.device), nil)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "FAKE1") {
			t.Errorf("%s: %v, want %q naming the device", tt.name, err, tt.wantErr)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v is not %v", tt.name, err, tt.is)
		}
		if res.Status != tt.status {
			t.Errorf("%s: status %q, want %q", tt.name, res.Status, tt.status)
		}
	}
}

// A device that keeps asking is cut off once it has read MaxServed bytes.
func TestSideloadDeviceAsksForever(t *testing.T) {
	pkg := make([]byte, 70_000)
	res, _, err := sideloadWith(t, context.Background(), pkg, repeatReader{[]byte("00000000")}, &SideloadOptions{MaxServed: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Fatalf("%v", err)
	}
	if res.BytesServed > 1<<20 || res.BlocksServed != 16 {
		t.Fatalf("served %d bytes in %d blocks", res.BytesServed, res.BlocksServed)
	}
	// The default bound is 16 times the package plus 64 MiB.
	res, _, err = sideloadWith(t, context.Background(), pkg, repeatReader{[]byte("00000001")}, nil)
	if err == nil || res.BytesServed > 64<<20+16*70_000 || res.BytesServed < 64<<20 {
		t.Fatalf("default bound: %v after %d bytes", err, res.BytesServed)
	}
}

// A silent device is stopped by the context.
func TestSideloadContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := sideloadWith(t, ctx, make([]byte, 1000), nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the deadline", err)
	}
}

func TestSideloadBounds(t *testing.T) {
	for _, tc := range []struct {
		size, block int
		want        string
	}{{0, 0, "must be positive"}, {1000, 128 << 10, "block size"}, {1000, 100, "block size"}} {
		_, _, err := sideloadWith(t, context.Background(), make([]byte, tc.size), strings.NewReader("DONEDONE"), &SideloadOptions{BlockSize: tc.block})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	// A reader shorter than the size given: an error naming the offset, not a short block.
	tr := &scriptTransport{open: func(string) (Stream, error) { t.Fatal("opened a stream for an unreadable package"); return nil, nil }}
	_, err := NewDevice(tr).Sideload(context.Background(), bytes.NewReader(make([]byte, 10)), 20, nil)
	if err == nil || !strings.Contains(err.Error(), "offset 10") {
		t.Fatalf("short package: %v", err)
	}
}

// A device that refuses sideload-host gets the whole package over sideload:<size>.
func TestSideloadLegacyFallback(t *testing.T) {
	pkg := bytes.Repeat([]byte{7}, 150_000)
	for _, tc := range []struct {
		status, want, err string
	}{
		{"OKAY", "OKAY", ""},
		{"FAIL0006broken", "FAIL: broken", "broken"},
		{"", "closed", "status"},
		{"WHAT", "", "protocol fault"},
	} {
		st := &scriptStream{r: strings.NewReader(tc.status), closed: make(chan struct{})}
		tr := &scriptTransport{open: func(s string) (Stream, error) {
			if strings.HasPrefix(s, "sideload-host:") {
				return nil, &FailError{Request: s, Message: "closed"}
			}
			return st, nil
		}}
		res, err := NewDevice(tr).Sideload(context.Background(), bytes.NewReader(pkg), int64(len(pkg)), nil)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v", tc.status, err)
		}
		if res.Status != tc.want || res.Service != "sideload" || !bytes.Equal(st.written.Bytes(), pkg) {
			t.Errorf("%q: %+v, %d bytes written", tc.status, res, st.written.Len())
		}
		if strings.Join(tr.opened, " ") != "sideload-host:150000:65536 sideload:150000" {
			t.Errorf("opened %q", tr.opened)
		}
	}
	// NoLegacy: the refusal is the error.
	tr := &scriptTransport{open: func(s string) (Stream, error) { return nil, &FailError{Request: s, Message: "closed"} }}
	if _, err := NewDevice(tr).Sideload(context.Background(), bytes.NewReader(pkg), int64(len(pkg)), &SideloadOptions{NoLegacy: true}); err == nil || len(tr.opened) != 1 {
		t.Fatalf("NoLegacy: %v, opened %q", err, tr.opened)
	}
	// A device the server does not know is not a legacy device.
	tr = &scriptTransport{open: func(s string) (Stream, error) { return nil, &FailError{Request: s, Message: "device 'X' not found"} }}
	if _, err := NewDevice(tr).Sideload(context.Background(), bytes.NewReader(pkg), int64(len(pkg)), nil); !errors.Is(err, ErrDeviceNotFound) || len(tr.opened) != 1 {
		t.Fatalf("not found: %v, opened %q", err, tr.opened)
	}
}

// FuzzSideloadDevice: whatever a device sends in a sideload-host stream, the host ends (error or
// not) without panicking and never serves more than the bound.
func FuzzSideloadDevice(f *testing.F) {
	f.Add([]byte("00000000DONEDONE"))
	f.Add([]byte("0000000100000000FAILFAIL"))
	f.Add([]byte("99999999"))
	f.Add([]byte("-1------"))
	f.Add([]byte("00000000000"))
	f.Fuzz(func(t *testing.T, device []byte) {
		pkg := make([]byte, 3000)
		res, _, err := sideloadWith(t, context.Background(), pkg, bytes.NewReader(device), &SideloadOptions{BlockSize: 1024, MaxServed: 1 << 16})
		if err == nil && res.Status != "DONEDONE" {
			t.Fatalf("no error but status %q", res.Status)
		}
		if res.BytesServed > 1<<16 || res.HighestBlock > 2 {
			t.Fatalf("served %+v", res)
		}
	})
}
