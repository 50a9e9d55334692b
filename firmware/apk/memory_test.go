package apk

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const memLimitKiB = 64 << 10 // verifying a 1 GiB APK stays under 64 MiB

// TestVerify1GiBStaysUnder64MiB verifies a 1 GiB APK (a sparse file: one stored entry of zeros,
// signed v2+v3) in a child process and reads the child's peak resident set size (VmHWM).
func TestVerify1GiBStaysUnder64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1 GiB sparse APK")
	}
	p := filepath.Join(t.TempDir(), "huge.apk")
	writeTestZip(t, p, []zipIn{
		{Name: "AndroidManifest.xml", Data: sampleManifest(t), Deflate: true},
		{Name: "assets/huge.bin", Size: 1 << 30},
	})
	signTestAPK(t, p, newTestKey(t, "huge", "rsa"), signConf{v2: true, v3: true})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperVerifyMemory$", "-test.v")
	cmd.Env = append(os.Environ(), "PROVKIT_MEMTEST_APK="+p)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak int64 = -1
	var verified string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "PEAK_RSS_KIB="); ok {
			peak, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "VERIFIED="); ok {
			verified = v
		}
	}
	if verified != "true" || peak < 0 {
		t.Fatalf("child output:\n%s", out)
	}
	t.Logf("peak RSS verifying a 1 GiB APK: %d KiB (limit %d KiB)", peak, memLimitKiB)
	if peak >= memLimitKiB {
		t.Fatalf("peak RSS %d KiB >= %d KiB", peak, memLimitKiB)
	}
}

// TestHelperVerifyMemory is the child of TestVerify1GiBStaysUnder64MiB.
func TestHelperVerifyMemory(t *testing.T) {
	p := os.Getenv("PROVKIT_MEMTEST_APK")
	if p == "" {
		t.Skip("helper process only")
	}
	res, err := VerifyFile(context.Background(), p, Options{MinSDK: 24})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Fatalf("not verified: %v", res.Errors)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			fmt.Printf("PEAK_RSS_KIB=%s\n", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	fmt.Printf("VERIFIED=%v\n", res.Verified)
}
