package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// ADBServerAddr returns the address of the local adb server: 127.0.0.1 and
// ANDROID_ADB_SERVER_PORT, or 5037.
func ADBServerAddr() string {
	port := 5037
	if p, err := strconv.Atoi(os.Getenv("ANDROID_ADB_SERVER_PORT")); err == nil && p > 0 && p < 65536 {
		port = p
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// HostRequest sends one request of the adb host protocol ("host:connect:...") to the adb server at
// server and returns its reply text. The server answers OKAY even when the request fails, so the
// caller must read the text ("connected to ...", "failed to connect to ...").
func HostRequest(ctx context.Context, server, req string) (string, error) {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		return "", fmt.Errorf("connecting to the adb server at %s: %w (start it with 'adb start-server')", server, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if len(req) > 0xffff {
		return "", fmt.Errorf("adb host request of %d bytes is too long", len(req))
	}
	if _, err := fmt.Fprintf(c, "%04x%s", len(req), req); err != nil {
		return "", fmt.Errorf("sending %q to the adb server: %w", req, err)
	}
	var status [4]byte
	if _, err := io.ReadFull(c, status[:]); err != nil {
		return "", fmt.Errorf("reading the adb server's reply to %q: %w", req, err)
	}
	msg, err := readHex4(c)
	if err != nil {
		return "", fmt.Errorf("reading the adb server's reply to %q: %w", req, err)
	}
	if string(status[:]) != "OKAY" {
		return "", fmt.Errorf("adb server refused %q: %s", req, msg)
	}
	return msg, nil
}

func readHex4(r io.Reader) (string, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n, err := strconv.ParseUint(string(h[:]), 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad length %q", h[:])
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
