package adb

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// pipeServer returns a Server whose every connection reads the request and is answered with reply,
// then closed.
func pipeServer(reply []byte) *Server {
	s := &Server{addr: "127.0.0.1:5037"}
	s.dialFn = func(ctx context.Context) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			// Drain requests while answering: the client may send a second request (a service
			// after a transport switch) before reading everything.
			go io.Copy(io.Discard, server)
			server.Write(reply)
		}()
		return client, nil
	}
	return s
}

func FuzzHostReply(f *testing.F) {
	for _, s := range []string{
		"OKAY00040029",
		"OKAY0000",
		"OKAY005eemulator-5554          device product:sdk model:Pixel device:generic transport_id:1\n",
		"FAIL0016device 'foo' not found",
		"OKAY0036failed to connect to '127.0.0.1:1': Connection refused",
		"OKAY\x07\x00\x00\x00\x00\x00\x00\x00",
		"OKAY0011shell_v2,cmd,ls_v2OKAY0000",
		"FAIL",
		"OKAYzzzz",
		"NOPE",
		"OKAY0010connected to a:1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		s := pipeServer(reply)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if v, err := s.Version(ctx); err == nil && (v < 0 || v > 0xffff) {
			t.Fatalf("version %d from %q", v, reply)
		}
		if devs, err := s.Devices(ctx); err == nil {
			for _, d := range devs {
				if d.Serial == "" {
					t.Fatalf("empty serial from %q", reply)
				}
			}
		}
		if r, err := s.Connect(ctx, "a:1"); err == nil && r.Serial == "" {
			t.Fatalf("connect succeeded without a serial from %q", reply)
		}
		s.Features(ctx, "x")
		s.TransportID(ctx, "x")
		s.Disconnect(ctx, "a:1")
		if tr, err := s.TrackDevices(ctx); err == nil {
			for range tr.C {
			}
			if tr.Err() == nil {
				t.Fatalf("tracking ended without a reason on %q", reply)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("a call hung on reply %q", reply)
		}
	})
}
