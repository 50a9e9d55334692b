package check

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/manifests/policy"
	"github.com/provkit/provkit/provision/adb"
	"github.com/provkit/provkit/provision/adb/adbtest"
)

// hostilePrelude makes a device whose `dumpsys` prints 60 MB (the review's case) and whose
// getprop prints endless lines.
const hostilePrelude = `dumpsys() { head -c 60000000 /dev/zero | tr '\0' 'x'; }`

func hostilePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	pol, err := policy.Parse([]byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: hostile}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "3f2a6e2bd4a8f5c8b3e4f1a09c1d2e3f4a5b6c7d8e9f00112233445566778899"}]
`), "hostile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// A device that answers dumpsys with 60 MB is stopped after what the parser accepts: the check
// reports it as an error naming the limit, and reads no more.
func TestHostileDumpsysIsBounded(t *testing.T) {
	p := adbtest.StartPeer(t, adbtest.PeerOptions{Prelude: hostilePrelude, Props: map[string]string{"ro.build.version.sdk": "34"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := Run(ctx, []Target{DirectTarget(p.Addr, adb.DialOptions{})}, Options{Policy: hostilePolicy(t), Jobs: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Verdict != VerdictError || !strings.Contains(strings.Join(rs[0].Reasons, " "), "more than "+strconv.Itoa(MaxDumpsysOutput)+" bytes") {
		t.Fatalf("result %+v, want an error naming the %d-byte limit", rs, MaxDumpsysOutput)
	}
}

// BenchmarkHostileDevices checks 16 devices at once whose dumpsys prints 60 MB each (--jobs 16)
// and reports the process's peak RSS (VmHWM); the target is under 256 MiB. Run by
// scripts/bench-hostile.sh.
func BenchmarkHostileDevices(b *testing.B) {
	var targets []Target
	for i := 0; i < 16; i++ {
		p := adbtest.StartPeer(b, adbtest.PeerOptions{Prelude: hostilePrelude, Props: map[string]string{"ro.build.version.sdk": "34"}})
		targets = append(targets, DirectTarget(p.Addr, adb.DialOptions{}))
	}
	pol := hostilePolicy(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		rs, err := Run(ctx, targets, Options{Policy: pol, Jobs: 16, Timeout: 3 * time.Minute})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Verdict != VerdictError {
				b.Fatalf("%s: verdict %s, want error", r.Serial, r.Verdict)
			}
		}
	}
	b.StopTimer()
	runtime.GC()
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
}

// peakRSS reads VmHWM, the process's peak resident set, from /proc/self/status.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}
