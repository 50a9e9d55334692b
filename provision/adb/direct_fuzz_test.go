package adb

import (
	"context"
	"crypto/rsa"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/provkit/provkit/provision/adb/wire"
)

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *rsa.PrivateKey
)

func pkt(cmd wire.Command, a0, a1 uint32, payload string) []byte {
	return wire.Packet{Command: cmd, Arg0: a0, Arg1: a1, Payload: []byte(payload)}.Marshal(wire.VersionMin)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// FuzzDirectDeviceBytes feeds arbitrary bytes as everything a device sends, then opens a shell
// and a sync stream: the client must fail cleanly (or work), never panic or hang.
func FuzzDirectDeviceBytes(f *testing.F) {
	cnxn := pkt(wire.CmdCNXN, wire.Version, 4096, "device::ro.product.model=X;features=shell_v2,stat_v2,ls_v2")
	f.Add(cnxn)
	f.Add(cat(pkt(wire.CmdAUTH, wire.AuthToken, 0, "01234567890123456789"), pkt(wire.CmdAUTH, wire.AuthToken, 0, "01234567890123456789"), cnxn))
	f.Add(cat(cnxn, pkt(wire.CmdOKAY, 7, 1, ""), pkt(wire.CmdWRTE, 7, 1, "\x01\x03\x00\x00\x00hi\n\x03\x01\x00\x00\x00\x00"), pkt(wire.CmdCLSE, 7, 1, "")))
	f.Add(cat(cnxn, pkt(wire.CmdOKAY, 7, 2, ""), pkt(wire.CmdWRTE, 7, 2, "STA2"), pkt(wire.CmdCNXN, 1, 1, "x")))
	f.Add(cat(cnxn, pkt(wire.CmdOPEN, 9, 0, "tcp:1\x00"), pkt(wire.CmdWRTE, 3, 99, "x"), pkt(wire.CmdSTLS, 1, 0, "")))
	f.Add(pkt(wire.CmdSTLS, wire.STLSVersion, 0, ""))
	f.Fuzz(func(t *testing.T, dev []byte) {
		fuzzKeyOnce.Do(func() { fuzzKey, _ = wire.GenerateKey() })
		client, device := net.Pipe()
		go func() {
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := device.Read(buf); err != nil {
						return
					}
				}
			}()
			device.Write(dev)
			device.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := newConn(ctx, client, "fuzz:1", "fuzz", &DialOptions{Keys: []*rsa.PrivateKey{fuzzKey}, AuthWait: 100 * time.Millisecond, MaxPayload: wire.MaxPayload})
		if err != nil {
			client.Close()
			if ctx.Err() != nil {
				t.Fatalf("the handshake hung on %q", dev)
			}
			return
		}
		defer c.Close()
		d := c.Device()
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		defer scancel()
		d.Shell(sctx, "id")
		d.Stat(sctx, "/x")
		if ctx.Err() != nil {
			t.Fatalf("a call outlived its context on %q", dev)
		}
	})
}
