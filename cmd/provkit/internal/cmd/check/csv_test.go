package check

import (
	"bytes"
	"encoding/csv"
	"testing"

	pcheck "github.com/provkit/provkit/provision/check"
)

// Values a device supplies must not become spreadsheet formulas, and ordinary values stay as
// they are.
func TestWriteCSVNeutralisesFormulas(t *testing.T) {
	rs := []pcheck.Result{
		{Serial: "R58M123", Verdict: "pass", Model: "Pixel 8", Fingerprint: "google/shiba/shiba:14/AP1A/1:user/release-keys"},
		{Serial: "@evil", Verdict: "fail", Model: "=HYPERLINK(\"http://x\",\"click\")", Fingerprint: "+1", Reasons: []string{"-2+3"}},
		{Serial: "tab", Verdict: "error", Model: "\tcmd", Fingerprint: "\r=1"},
	}
	var b bytes.Buffer
	if err := writeCSV(&b, rs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, b.String())
	}
	want := [][]string{
		{"serial", "verdict", "model", "fingerprint", "reasons"},
		{"R58M123", "pass", "Pixel 8", "google/shiba/shiba:14/AP1A/1:user/release-keys", ""},
		{"'@evil", "fail", "'=HYPERLINK(\"http://x\",\"click\")", "'+1", "'-2+3"},
		{"tab", "error", "'\tcmd", "'\r=1", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %q", rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("row %d col %d = %q, want %q", i, j, rows[i][j], want[i][j])
			}
		}
	}
}
