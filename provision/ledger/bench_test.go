package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/internal/testpg"
)

// BenchmarkRun records one phone's whole run as a flash + check station does: device seen, run
// started, four steps started and finished, the verdict. It is the ledger's share of a phone.
func BenchmarkRun(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "l.db")
			if backend == "postgres" {
				dsn = testpg.Shared(b).NewDatabase(b)
			}
			ctx := context.Background()
			l, err := Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			st, err := l.StartStation(ctx, StationInfo{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			evidence := map[string]any{"partitions": []string{"boot", "system"}, "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				serial := fmt.Sprintf("B%08d", i)
				if err := st.DeviceSeen(ctx, serial, true, ""); err != nil {
					b.Fatal(err)
				}
				run, err := st.BeginRun(ctx, RunSpec{Serial: serial, PolicySHA256: "p", FirmwareSHA256: "f"})
				if err != nil {
					b.Fatal(err)
				}
				for _, step := range []string{"bootloader", "flash", "boot", "check"} {
					if err := run.StepStarted(ctx, step); err != nil {
						b.Fatal(err)
					}
					if err := run.StepFinished(ctx, step, true, "", evidence); err != nil {
						b.Fatal(err)
					}
				}
				if err := run.Finish(ctx, Verdict{Verdict: VerdictPass, Evidence: evidence}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
