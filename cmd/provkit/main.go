// Command provkit gets Android devices compliant with a preinstall mandate and proves it.
//
// The command layer is thin: flags become options, options go to a run function in a package below
// (firmware, manifests, provision). See README.md for the commands and their exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/cmd/provkit/internal/root"
)

//go:generate go run ./internal/gendocs -out ../../docs

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := root.Run(ctx, iostreams.System(), os.Args[1:])
	stop()
	os.Exit(code)
}
