package aosp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk"
	"github.com/provkit/provkit/internal/testtool"
)

const androguardAPKs = "../../testdata/.cache/androguard/apks"

func realLayout(t *testing.T, name string) []apk.EntryLayout {
	t.Helper()
	p := filepath.Join(androguardAPKs, name)
	if _, err := os.Stat(p); err != nil {
		testtool.Missing(t, "androguard's test APKs are not fetched: run scripts/fetch-testdata.sh")
	}
	l, err := apk.LayoutFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestJudgePresignedRealAPKs judges real APKs as Debian ships them (androguard's examples; their
// dex is compressed, as in most APKs built with default settings).
func TestJudgePresignedRealAPKs(t *testing.T) {
	hello := &APKFacts{TargetSDK: 33, SignedV2Plus: true, Layout: realLayout(t, "hello-world.apk")}
	v := judgePresigned(hello, true, false, FormatBp)
	if v.Qualifies || !strings.Contains(v.Blocker, "classes.dex (compressed dex in a privileged app)") || !strings.Contains(v.Blocker, "requires `preprocessed: true`") {
		t.Errorf("privileged, compressed dex, SDK 33: %+v", v)
	}
	v = judgePresigned(hello, false, false, FormatBp)
	if !v.Qualifies || v.Blocker != "" || len(v.CompressedDex) == 0 {
		t.Errorf("not privileged, compressed dex only: %+v", v)
	}
	// Target SDK below 30, v2-signed, not qualifying: Make would rewrite it.
	hello.TargetSDK = 28
	if v = judgePresigned(hello, true, false, FormatMk); !strings.Contains(v.Blocker, "break its APK Signature Scheme v2+ signature") {
		t.Errorf("mk, SDK 28, v2: %+v", v)
	}
	// v1 only: the build may process it.
	hello.SignedV2Plus = false
	if v = judgePresigned(hello, true, false, FormatBp); v.Blocker != "" || !strings.Contains(v.Note, "v1 (JAR) signature survives") {
		t.Errorf("bp, SDK 28, v1 only: %+v", v)
	}
	// zipalign -c -p 4 fails on this one (TestLayoutAgainstZipalign checks the same against zipalign).
	un := &APKFacts{TargetSDK: 34, SignedV2Plus: true, Layout: realLayout(t, "Test-debug-unaligned.apk")}
	v = judgePresigned(un, false, false, FormatBp)
	if v.Qualifies || !strings.Contains(v.Blocker, "not a multiple of 4") {
		t.Errorf("unaligned: %+v", v)
	}
}
