package apk

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// androguardDir is where scripts/fetch-testdata.sh puts the files of Debian's androguard package:
// apksig/ (an older copy of Google's apksig test suite, 309 APKs) and apks/ (real-world APKs from
// its examples).
const androguardDir = "../../testdata/.cache/androguard"

// androguardExceptions are the files where provkit and Debian's apksigner (31.0.2) disagree on
// purpose. Each reason says why provkit is right.
// (Files signed with v3.1 or with more than 10 signers are recognised by exceptionReason.)
var androguardExceptions = map[string]string{
	"v1-only-with-nul-in-entry-name.apk": "an entry name with a NUL byte (\"test.txt\\x00\"): provkit refuses it " +
		"as malformed. apksig's own signer refuses to sign such an APK (ApkFormatException), and a NUL " +
		"makes C code (the platform's ZIP reader, installers) see another name than Java code does.",
}

// apksignerVerdict is Debian's apksigner's answer for one file.
type apksignerVerdict struct {
	ok     bool
	sha256 string
}

// apksignerResults runs "apksigner verify --print-certs -v" on every file, two at a time, and
// caches the answers in testdata/.cache/androguard/apksigner.tsv keyed by the files' SHA-256 (a
// JVM start per file makes the first run take minutes).
func apksignerResults(t *testing.T, files []string) map[string]apksignerVerdict {
	cachePath := filepath.Join(androguardDir, "apksigner.tsv")
	cache := map[string]apksignerVerdict{}
	if f, err := os.Open(cachePath); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			c := strings.Split(sc.Text(), "\t")
			if len(c) == 3 {
				cache[c[0]] = apksignerVerdict{ok: c[1] == "verifies", sha256: c[2]}
			}
		}
		f.Close()
	}
	out := map[string]apksignerVerdict{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	added := false
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		key := hex.EncodeToString(sum[:])
		if v, ok := cache[key]; ok {
			out[p] = v
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(p, key string) {
			defer wg.Done()
			defer func() { <-sem }()
			o, err := exec.Command("apksigner", "verify", "--print-certs", "-v", p).CombinedOutput()
			v := apksignerVerdict{ok: err == nil}
			if m := apksignerDigest.FindStringSubmatch(string(o)); m != nil {
				v.sha256 = m[1]
			}
			mu.Lock()
			out[p], cache[key], added = v, v, true
			mu.Unlock()
		}(p, key)
	}
	wg.Wait()
	if added {
		var b strings.Builder
		keys := make([]string, 0, len(cache))
		for k := range cache {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := cache[k]
			verdict := "fails"
			if v.ok {
				verdict = "verifies"
			}
			fmt.Fprintf(&b, "%s\t%s\t%s\n", k, verdict, v.sha256)
		}
		if err := os.WriteFile(cachePath, []byte(b.String()), 0o644); err != nil {
			t.Logf("caching apksigner results: %v", err)
		}
	}
	return out
}

// TestAndroguardAgainstApksigner runs provkit and Debian's apksigner on every APK of androguard's
// copy of the apksig suite and on its real-world example APKs: same verdict, same Signer #1.
func TestAndroguardAgainstApksigner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs apksigner on ~330 files")
	}
	if _, err := os.Stat(filepath.Join(androguardDir, ".done")); err != nil {
		testtool.Missing(t, "androguard's test APKs are not fetched: run scripts/fetch-testdata.sh")
	}
	testtool.Require(t, "apksigner")
	var files []string
	for _, sub := range []string{"apksig", "apks"} {
		m, _ := filepath.Glob(filepath.Join(androguardDir, sub, "*.apk"))
		files = append(files, m...)
	}
	if len(files) < 300 {
		t.Fatalf("only %d APKs under %s", len(files), androguardDir)
	}
	want := apksignerResults(t, files)
	agree, excepted := 0, 0
	for _, p := range files {
		name := filepath.Base(p)
		res, err := VerifyFile(context.Background(), p, Options{NoV4AutoDetect: true})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		a := want[p]
		got := apksignerVerdict{ok: res.Verified}
		if res.Verified {
			got.sha256 = res.Signers[0].SHA256
		}
		same := got.ok == a.ok && (!a.ok || got.sha256 == a.sha256)
		reason := exceptionReason(name, res)
		switch {
		case same && reason == "":
			agree++
		case same:
			t.Errorf("%s: listed as an exception (%s) but provkit and apksigner agree: remove it", name, reason)
		case reason != "":
			excepted++
			t.Logf("exception %s: provkit %v %s, apksigner %v %s: %s", name, got.ok, got.sha256, a.ok, a.sha256, reason)
		default:
			t.Errorf("%s: provkit verified=%v signer %s errors %v; apksigner verified=%v signer %s", name, got.ok, got.sha256, res.Errors, a.ok, a.sha256)
		}
	}
	t.Logf("%d files: %d agree with apksigner 31.0.2, %d listed exceptions", len(files), agree, excepted)
}

// exceptionReason says why provkit may differ from apksigner 31 on this file, or "".
func exceptionReason(name string, res *Result) string {
	if r, ok := androguardExceptions[name]; ok {
		return r
	}
	if res.Schemes.V31 {
		return "signed with v3.1 (key rotation targeted at Android 13+), which apksigner 31 predates: it reports the pre-rotation v3 key"
	}
	for _, e := range res.Errors {
		if e.Code == "V2_SIG_MAX_SIGNATURES_EXCEEDED" || e.Code == "JAR_SIG_MAX_SIGNATURES_EXCEEDED" {
			return "more than 10 signers: Android rejects it since 2021 (apksig's signer-count limit), apksigner 31 predates the limit"
		}
	}
	return ""
}
