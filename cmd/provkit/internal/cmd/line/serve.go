package line

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/provision/dashboard"
	"github.com/provkit/provkit/provision/ledger"
)

// ServeOptions are the inputs of `provkit line serve`.
type ServeOptions struct {
	IO     *iostreams.IOStreams
	Ledger string
	Listen string
	// Ready, when set, is told the address the server listens on (tests).
	Ready func(addr string)
}

// NewCmdServe returns "provkit line serve".
func NewCmdServe(ios *iostreams.IOStreams, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "serve [--ledger <path|postgres://...>] [--listen <host:port>]",
		Short: "Serve the plant's live dashboard over a ledger, and /metrics for Prometheus",
		Long: `Serve one live page for every station writing to the ledger: stations (running, stale,
stopped), phones in progress with their step, pass/fail counts and phones per hour, the latest
failures with their reasons, and a search by serial with the phone's whole history and evidence.
The page updates by itself (server-sent events). Everything is in the provkit binary: no CDN, no
internet needed.

/metrics serves Prometheus metrics: provkit_line_verdicts_total{station,verdict},
provkit_line_devices_processed_total{station}, provkit_line_devices_in_progress{station},
provkit_line_station_up{station} and provkit_line_step_duration_seconds{station,step,ok}.

The dashboard only reads the ledger (any method but GET and HEAD is refused). It listens on
127.0.0.1 by default; listening on another address shows the plant's records to whoever can
reach it, so put it behind your network's access control.
` + cmdutil.ExitStatus(
			"1    the ledger could not be opened, or the address is in use",
			"2    bad flags",
			"130  stopped (Ctrl-C)"),
		Example: `  provkit line serve
  provkit line serve --ledger postgres://provkit@db.plant/ledger --listen 127.0.0.1:8080
  curl -s 127.0.0.1:8080/metrics | grep provkit_line_verdicts_total`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
				return cmdutil.FlagErrorf("--listen %q: %v; use <host:port>", opts.Listen, err)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return serveRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Ledger, "ledger", "", "the ledger: a SQLite `<path>` or a postgres:// URL (default ~/.local/state/provkit/ledger.db)")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", "listen on `<host:port>` (port 0: any free port)")
	return cmd
}

func serveRun(ctx context.Context, opts *ServeOptions) error {
	l, err := ledger.Open(ctx, opts.Ledger)
	if err != nil {
		return err
	}
	defer l.Close()
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listening for the dashboard: %w", err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: dashboard.New(l, dashboard.Options{}), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	fmt.Fprintf(opts.IO.ErrOut, "dashboard of %s on http://%s/ (metrics: /metrics); Ctrl-C stops it\n", l.Where(), addr)
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving the dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("dashboard stopped: %w", ctx.Err())
}
