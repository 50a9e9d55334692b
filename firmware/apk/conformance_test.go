package apk

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// expectRow is one line of testdata/apksig/expect.tsv (see testdata/apksig/README.md and the
// suite's README for the columns).
type expectRow struct {
	line                       int
	file, minSDK, maxSDK, opts string
	expected, issue, signer    string
	method                     string
}

func readExpect(t *testing.T) []expectRow {
	t.Helper()
	f, err := os.Open("testdata/apksig/expect.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []expectRow
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if n == 1 {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 8 {
			t.Fatalf("expect.tsv:%d: %d columns", n, len(c))
		}
		rows = append(rows, expectRow{n, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]})
	}
	return rows
}

func (r expectRow) options() map[string]string {
	out := map[string]string{}
	for _, o := range strings.Split(r.opts, ";") {
		if o == "" {
			continue
		}
		k, v, _ := strings.Cut(o, "=")
		out[k] = v
	}
	return out
}

func (r expectRow) isStamp() bool {
	o := r.options()
	_, a := o["stamp"]
	_, b := o["verifySourceStamp"]
	return a || b
}

func (r expectRow) verifyOptions(t *testing.T) Options {
	var opts Options
	opts.NoV4AutoDetect = true
	if r.minSDK != "" {
		opts.MinSDK, _ = strconv.Atoi(r.minSDK)
		if r.minSDK == "0" {
			t.Fatalf("line %d: min SDK 0 is not expressible", r.line)
		}
	}
	if r.maxSDK != "" {
		opts.MaxSDK, _ = strconv.Atoi(r.maxSDK)
	}
	if v4 := r.options()["v4"]; v4 != "" {
		opts.V4File = filepath.Join("testdata/apksig/files", v4)
	}
	return opts
}

// TestApksigConformance runs every row of apksig's ApkVerifierTest expectations. Source-stamp rows
// are checked by TestApksigSourceStampRows.
func TestApksigConformance(t *testing.T) {
	rows := readExpect(t)
	checked := 0
	for _, row := range rows {
		if row.isStamp() {
			continue
		}
		checked++
		name := fmt.Sprintf("%d_%s", row.line, row.file)
		t.Run(name, func(t *testing.T) {
			res, err := VerifyFile(context.Background(), filepath.Join("testdata/apksig/files", row.file), row.verifyOptions(t))
			if err != nil {
				if row.expected == "fails" && row.issue == "exception:IOException" {
					return
				}
				t.Fatalf("%s (%s): error %v", row.file, row.method, err)
			}
			desc := func() string {
				return fmt.Sprintf("%s [min=%s max=%s opts=%s] (%s): verified=%v errors=%v warnings=%v", row.file, row.minSDK, row.maxSDK, row.opts, row.method, res.Verified, res.Errors, res.Warnings)
			}
			switch row.expected {
			case "verifies":
				if !res.Verified {
					t.Fatalf("want verified: %s", desc())
				}
				checkSigners(t, row, res)
			case "fails":
				if res.Verified {
					t.Fatalf("want not verified (%s): %s", row.issue, desc())
				}
				if strings.HasPrefix(row.issue, "exception:") {
					if len(res.Errors) == 0 {
						t.Fatalf("want an error: %s", desc())
					}
					return
				}
				if !hasAny(res.Errors, row.issue) {
					t.Fatalf("want error %s: %s", row.issue, desc())
				}
			case "warns":
				if !hasAny(res.Warnings, row.issue) {
					t.Fatalf("want warning %s: %s", row.issue, desc())
				}
			case "completes":
				// verify() must return; checked above. Options may still assert.
			default:
				t.Fatalf("unknown expectation %q", row.expected)
			}
			o := row.options()
			if l := o["lineage"]; l != "" {
				if got := res.LineageSHA256(); !slices.Equal(got, strings.Split(l, ",")) {
					t.Fatalf("lineage %v, want %s: %s", got, l, desc())
				}
			}
			if o["usesv31"] == "true" && !res.Schemes.V31 {
				t.Fatalf("want verified with v3.1: %s", desc())
			}
			if m := o["v31minsdk"]; m != "" {
				if len(res.Signers) == 0 || res.Signers[0].Scheme != "v3.1" || strconv.Itoa(res.Signers[0].MinSDK) != m {
					t.Fatalf("want a v3.1 signer for SDK %s, got %+v: %s", m, res.Signers, desc())
				}
				if o["v31devrelease"] == "true" && !v31Signers(res)[len(v31Signers(res))-1].DevRelease {
					t.Fatalf("want the v3.1 signer flagged dev-release: %+v", res.SDKSigners)
				}
				if n := o["v31signers"]; n != "" && strconv.Itoa(len(v31Signers(res))) != n {
					t.Fatalf("want %s v3.1 signers, got %d", n, len(v31Signers(res)))
				}
			}
		})
	}
	t.Logf("checked %d of %d rows (the rest are source-stamp rows)", checked, len(rows))
}

func v31Signers(res *Result) []Signer {
	var out []Signer
	for _, s := range res.SDKSigners {
		if s.Scheme == "v3.1" {
			out = append(out, s)
		}
	}
	return out
}

func hasAny(issues []Issue, want string) bool {
	for _, w := range strings.Split(want, "|") {
		for _, i := range issues {
			if i.Code == w {
				return true
			}
		}
	}
	return false
}

func checkSigners(t *testing.T, row expectRow, res *Result) {
	t.Helper()
	if row.signer == "" {
		return
	}
	if !strings.Contains(row.signer, ":") {
		if len(res.Signers) != 1 || res.Signers[0].SHA256 != row.signer {
			t.Fatalf("signers %+v, want exactly %s", res.Signers, row.signer)
		}
		return
	}
	for _, part := range strings.Split(row.signer, ";") {
		schemes, digest, _ := strings.Cut(part, ":")
		if schemes == "v31" {
			if len(res.Signers) == 0 || res.Signers[0].SHA256 != digest || res.Signers[0].Scheme != "v3.1" {
				t.Fatalf("signer #1 %+v, want the v3.1 signer %s", res.Signers, digest)
			}
			continue
		}
		found := false
		for _, s := range res.SDKSigners {
			if s.Scheme == "v3" && s.SHA256 == digest {
				found = true
			}
		}
		if !found {
			t.Fatalf("v3 signers %+v do not include %s", res.SDKSigners, digest)
		}
	}
}

// TestApksigSourceStampRows checks the suite's source-stamp rows against the SourceStamp report.
// "stamp" rows assert isSourceStampVerified() and the stamp's issue; "verifySourceStamp" rows assert
// apksig's SourceStampVerificationStatus (provkit reports the stamp as part of a normal verification
// with the row's SDK range; an expected stamp certificate digest is compared by the test).
func TestApksigSourceStampRows(t *testing.T) {
	for _, row := range readExpect(t) {
		if !row.isStamp() {
			continue
		}
		t.Run(fmt.Sprintf("%d_%s", row.line, row.file), func(t *testing.T) {
			res, err := VerifyFile(context.Background(), filepath.Join("testdata/apksig/files", row.file), row.verifyOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			st := res.SourceStamp
			if st == nil {
				st = &SourceStamp{Status: StampMissing}
			}
			desc := fmt.Sprintf("%s [min=%s max=%s %s] (%s): apk verified=%v errors=%v; stamp %+v", row.file, row.minSDK, row.maxSDK, row.opts, row.method, res.Verified, res.Errors, *st)
			o := row.options()
			status := st.Status
			if want, ok := o["verifySourceStamp"]; ok && want != "" && st.SHA256 != "" && st.SHA256 != want {
				status = "CERT_DIGEST_MISMATCH"
				st.Verified = false
				st.Warnings = append(st.Warnings, Issue{Code: "SOURCE_STAMP_EXPECTED_DIGEST_MISMATCH"})
			}
			if want := o["status"]; want != "" && status != want {
				t.Fatalf("stamp status %s, want %s: %s", status, want, desc)
			}
			if ts := o["timestamp"]; ts != "" && strconv.FormatInt(st.Timestamp, 10) != ts {
				t.Fatalf("stamp timestamp %d, want %s: %s", st.Timestamp, ts, desc)
			}
			switch row.expected {
			case "verifies":
				if !st.Verified {
					t.Fatalf("want stamp verified: %s", desc)
				}
			case "fails":
				if st.Verified {
					t.Fatalf("want stamp not verified: %s", desc)
				}
				if !hasAny(st.Warnings, row.issue) && !hasAny(st.Errors, row.issue) {
					t.Fatalf("want stamp issue %s: %s", row.issue, desc)
				}
			}
			t.Logf("%s: stamp %s", row.file, status)
		})
	}
}
