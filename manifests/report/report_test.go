package report

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

const hostileSerial = `R58<script>alert(1)</script>`
const hostileFP = `google/x"><img src=x onerror=alert(2)>:14/user/release-keys`

// checkJSON is a `check --json` document for three phones: one passes, one fails two rules, one
// could not be checked; a phone's strings are hostile.
func checkJSON(t *testing.T) []byte {
	t.Helper()
	doc := map[string]any{
		"devices": []map[string]any{
			{"serial": "PASS001", "verdict": "pass", "reasons": []string{}, "model": "Pixel 5", "fingerprint": "google/redfin/redfin:14/UQ1A/1:user/release-keys",
				"checks": []policy.Check{{Rule: "fingerprint-allowed", Pass: true, Detail: "any"}},
				"apps":   []map[string]any{{"package": "ru.oneme.app", "checks": []policy.Check{{Rule: "signer-pinned", Pass: true, Detail: "pinned"}}}}},
			{"serial": hostileSerial, "verdict": "fail", "reasons": []string{"signer-pinned: signer 00ff is not pinned", "enabled: disabled"}, "model": "<b>Evil</b>", "fingerprint": hostileFP,
				"checks": []policy.Check{},
				"apps": []map[string]any{{"package": "ru.oneme.app", "checks": []policy.Check{
					{Rule: "signer-pinned", Pass: false, Detail: "signer 00ff is not pinned"}, {Rule: "enabled", Pass: false, Detail: "disabled"}}}}},
			{"serial": "GONE003", "verdict": "error", "reasons": []string{"device vanished"}, "checks": []policy.Check{}, "apps": []map[string]any{}},
		},
		"summary": map[string]any{"devices": 3, "pass": 1, "fail": 1, "error": 1, "policy": "national-messenger"},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signedCheck(t *testing.T, dir string, priv ed25519.PrivateKey) string {
	t.Helper()
	st := &evidence.Statement{
		Subject: []evidence.Subject{evidence.DeviceSubject(hostileSerial, hostileFP, "Evil")},
		Predicate: &evidence.Compliance{Kind: evidence.KindDeviceCheck, Verdict: evidence.VerdictNotCompliant,
			Policy: evidence.PolicyRef{Name: "national-messenger", SHA256: strings.Repeat("ab", 32)},
			Rules:  []evidence.RuleResult{{Subject: "device:" + hostileSerial, Rule: "signer-pinned", Detail: "</td><script>x()</script>"}},
			Time:   time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), Result: checkJSON(t)},
	}
	env, err := evidence.Sign(st, priv)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "check.dsse.json")
	if err := evidence.WriteEnvelope(p, env); err != nil {
		t.Fatal(err)
	}
	return p
}

func render(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Render(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestReportEscapesAndCounts(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	env := signedCheck(t, dir, priv)
	raw := filepath.Join(dir, "stock.json")
	os.WriteFile(raw, checkJSON(t), 0o644)
	r, err := Load([]string{env, raw}, Options{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Phones != 6 || r.Invalid != 0 || r.Unsigned != 1 {
		t.Fatalf("phones %d invalid %d unsigned %d, want 6 0 1", r.Phones, r.Invalid, r.Unsigned)
	}
	want := map[string]int{"pass": 2, "fail": 2, "error": 2}
	for _, c := range r.ByVerdict {
		if want[c.Label] != c.N {
			t.Errorf("verdict %s: %d phones, want %d", c.Label, c.N, want[c.Label])
		}
	}
	if len(r.ByFailedRule) != 2 || r.ByFailedRule[0].N != 2 {
		t.Errorf("failed rules %+v, want enabled and signer-pinned twice each", r.ByFailedRule)
	}
	html := render(t, r)
	for _, bad := range []string{"<script", "<img", "<b>Evil", "onerror=alert(2)>"} {
		if strings.Contains(html, bad) {
			t.Errorf("report holds %q unescaped", bad)
		}
	}
	for _, good := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "sig-verified", "national-messenger", "signer-pinned"} {
		if !strings.Contains(html, good) {
			t.Errorf("report lacks %q", good)
		}
	}
	// Nothing is fetched: no src or href attribute, and a CSP that forbids it.
	if strings.Contains(html, ` src="`) || strings.Contains(html, ` href="`) {
		t.Error("report references an external resource")
	}

	// With another key the attestation shows as INVALID.
	other, _, _ := ed25519.GenerateKey(nil)
	r, err = Load([]string{env}, Options{Key: other})
	if err != nil {
		t.Fatal(err)
	}
	if r.Invalid != 1 || !strings.Contains(render(t, r), "sig-INVALID") {
		t.Fatal("an attestation signed by another key is not shown as INVALID")
	}
}

func TestLoadRejectsOtherJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	os.WriteFile(p, []byte(`{"hello": 1}`), 0o644)
	if _, err := Load([]string{p}, Options{}); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Fatalf("unknown JSON: %v, want an error naming the file", err)
	}
	os.WriteFile(p, []byte(`not json`), 0o644)
	if _, err := Load([]string{p}, Options{}); err == nil {
		t.Fatal("non-JSON accepted")
	}
}

// The report renders in a real browser, prints to PDF, and its first page becomes a PNG (the one
// docs/evidence.md shows is made this way: PROVKIT_UPDATE_DOCS=1 writes it to docs/img/report.png).
func TestReportInChromium(t *testing.T) {
	testtool.Require(t, "chromium", "pdftoppm")
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	env := signedCheck(t, dir, priv)
	raw := filepath.Join(dir, "stock.json")
	os.WriteFile(raw, checkJSON(t), 0o644)
	r, err := Load([]string{env, raw}, Options{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	htmlPath := filepath.Join(dir, "report.html")
	if err := os.WriteFile(htmlPath, []byte(render(t, r)), 0o644); err != nil {
		t.Fatal(err)
	}
	chromium := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir()}
		cmd := exec.CommandContext(ctx, "chromium", append(base, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	dom := string(chromium("--dump-dom", "file://"+htmlPath))
	for _, want := range []string{"Summary: 6 phone(s)", "NOT-COMPLIANT", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the rendered DOM holds a script element")
	}
	pdf := filepath.Join(dir, "report.pdf")
	chromium("--no-pdf-header-footer", "--print-to-pdf="+pdf, "file://"+htmlPath)
	data, err := os.ReadFile(pdf)
	if err != nil || !bytes.HasPrefix(data, []byte("%PDF-")) {
		t.Fatalf("no PDF printed (%v)", err)
	}
	pngBase := filepath.Join(dir, "page")
	if out, err := exec.Command("pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", pdf, pngBase).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	png, err := os.ReadFile(pngBase + ".png")
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 10000 {
		t.Fatalf("page 1 PNG missing or blank (%d bytes, %v)", len(png), err)
	}
	if os.Getenv("PROVKIT_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "report.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
