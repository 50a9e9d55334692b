package fastboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func framed(msgs ...string) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint64(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzClientDeviceBytes feeds arbitrary bytes as everything a device sends: the client must fail
// cleanly or work, never panic or hang.
func FuzzClientDeviceBytes(f *testing.F) {
	f.Add(append([]byte("FB01"), framed("OKAY0.4", "DATA00000010", "OKAY", "INFOwriting", "OKAY")...))
	f.Add(append([]byte("FB01"), framed("FAILnope", "DATA00000004", "INFOx", "TEXTy", "FAILbad")...))
	f.Add(append([]byte("FB99"), framed("OKAY")...))
	f.Add(append([]byte("FB01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, dev []byte) {
		client, device := net.Pipe()
		go func() {
			go func() {
				buf := make([]byte, 64<<10)
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
		c, err := newClient(ctx, client, "fuzz:5554")
		if err != nil {
			client.Close()
			return
		}
		defer c.Close()
		c.GetVar(ctx, "product")
		img := bytes.Repeat([]byte{1}, 16)
		c.Flash(ctx, "boot", bytes.NewReader(img), int64(len(img)), FlashOptions{MaxDownload: 1 << 20})
		if ctx.Err() != nil {
			t.Fatalf("a call hung on %q", dev)
		}
	})
}
