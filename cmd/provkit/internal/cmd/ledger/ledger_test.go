package ledger

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	pledger "github.com/provkit/provkit/provision/ledger"
)

// A serial or reason a phone supplied never reaches a spreadsheet as a formula.
func TestCSVNeutralisesFormulas(t *testing.T) {
	var b bytes.Buffer
	vs := []pledger.VerdictRecord{{Serial: "=HYPERLINK(\"http://x\")", Verdict: "fail", Station: "+st", Time: time.Unix(0, 0).UTC(),
		Reasons: []string{"@SUM(A1): x", "app-installed (p): y"}, FailedRules: []string{"@SUM(A1)", "app-installed"}, RunID: "r1"}}
	if err := WriteCSV(&b, vs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %q", rows)
	}
	r := rows[1]
	if r[0] != `'=HYPERLINK("http://x")` || r[2] != "'+st" || r[6] != "'@SUM(A1) app-installed" || r[7] != "'@SUM(A1): x; app-installed (p): y" {
		t.Fatalf("row %q", r)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-05-01T08:00:00Z": time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := ParseSince("2026-05-01", now); err != nil || got.Year() != 2026 || got.Day() != 1 {
		t.Errorf("date: %v %v", got, err)
	}
	for _, bad := range []string{"-1h", "yesterday", "2026-13-01"} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) accepted", bad)
		}
	}
}
