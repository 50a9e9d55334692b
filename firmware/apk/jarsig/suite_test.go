package jarsig_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/firmware/apk/jarsig"
	"github.com/provkit/provkit/internal/testtool"
)

const suiteDir = "../testdata/apksig"

type expectRow struct {
	file, option, expected, issue, signer, method string
	minSDK, maxSDK                                string
	line                                          int
}

func readExpectations(t testing.TB) []expectRow {
	f, err := os.Open(filepath.Join(suiteDir, "expect.tsv"))
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
		rows = append(rows, expectRow{file: c[0], minSDK: c[1], maxSDK: c[2], option: c[3], expected: c[4], issue: c[5], signer: c[6], method: c[7], line: n})
	}
	return rows
}

func hasIssue(res *jarsig.Result, code string, warning bool) bool {
	lists := [][]jarsig.Issue{res.Errors}
	if warning {
		lists = [][]jarsig.Issue{res.Warnings}
	}
	for _, s := range res.Signers {
		if warning {
			lists = append(lists, s.Warnings)
		} else {
			lists = append(lists, s.Errors)
		}
	}
	for _, l := range lists {
		for _, i := range l {
			if i.Code == code {
				return true
			}
		}
	}
	return false
}

func allIssues(res *jarsig.Result) string {
	var b strings.Builder
	for _, i := range res.Errors {
		b.WriteString("\n  error " + i.String())
	}
	for _, i := range res.Warnings {
		b.WriteString("\n  warning " + i.String())
	}
	for _, s := range res.Signers {
		for _, i := range s.Errors {
			b.WriteString("\n  " + s.Name + " error " + i.String())
		}
	}
	for _, s := range res.IgnoredSigners {
		for _, i := range s.Errors {
			b.WriteString("\n  ignored " + s.Name + " error " + i.String())
		}
	}
	return b.String()
}

// TestSuiteExpectations runs jarsig on the rows of apksig's ApkVerifierTest expectations
// (expect.tsv) where apksig verifies the JAR signature (minSdk below 24, or no APK Signature
// Scheme block), with the row's SDK bounds. Rows about a JAR_SIG_* issue must fail with it;
// rows that verify must verify here too, with the row's signer certificate.
func TestSuiteExpectations(t *testing.T) {
	aapt := testtool.Require(t, "aapt")[0]
	rows := readExpectations(t)
	counts := map[string]int{}
	for _, row := range rows {
		if row.option != "" && !strings.HasPrefix(row.option, "provider=") && row.option != "heap<2GB" {
			counts["skipped: stamp, v4 or v3.1-specific option"]++
			continue
		}
		name := row.file + ":" + strconv.Itoa(row.line)
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(suiteDir, row.file)
			apk := readFile(t, path)
			minSDK, maxSDK := 0, math.MaxInt
			if row.minSDK != "" {
				minSDK, _ = strconv.Atoi(row.minSDK)
			} else {
				v, ok := manifestMinSDK(t, aapt, path)
				if !ok {
					counts["skipped: no readable AndroidManifest.xml (ApkFormatException in apksig)"]++
					t.Skip("aapt cannot read the manifest")
				}
				minSDK = v
			}
			if row.maxSDK != "" {
				maxSDK, _ = strconv.Atoi(row.maxSDK)
			}
			if minSDK > maxSDK {
				counts["skipped: minSdk above maxSdk"]++
				t.Skip("minSdk above maxSdk")
			}
			found, runs := foundSchemes(signingBlockIDs(apk), minSDK, maxSDK)
			if !runs {
				counts["skipped: JAR signature not checked (v2/v3 present, minSdk >= 24)"]++
				t.Skip("apksig does not check the JAR signature")
			}
			a, err := zipArchiveOrErr(apk)
			if err != nil {
				if row.expected == "fails" && strings.HasPrefix(row.issue, "exception:") {
					counts["checked: archive/zip rejects, apksig throws"]++
					return
				}
				t.Fatalf("archive/zip: %v", err)
			}
			res, err := jarsig.Verify(context.Background(), a, jarsig.Options{MinSDK: minSDK, MaxSDK: maxSDK, FoundSchemeIDs: found})
			switch {
			case strings.HasPrefix(row.issue, "exception:"):
				if row.option == "heap<2GB" {
					if err == nil || !errors.Is(err, jarsig.ErrFormat) {
						t.Fatalf("want an ErrFormat error for the oversized manifest, got %v", err)
					}
					counts["checked: oversized entry rejected"]++
					return
				}
				// apksig throws for a ZIP or AndroidManifest.xml problem outside JAR verification.
				counts["not asserted: apksig throws outside JAR verification"]++
				return
			case err != nil:
				t.Fatalf("Verify: %v", err)
			case strings.HasPrefix(row.issue, "JAR_SIG_"):
				if res.Verified || !hasIssue(res, row.issue, row.expected == "warns") {
					t.Fatalf("want failure with %s (minSdk %d maxSdk %d), got verified=%v:%s", row.issue, minSDK, maxSDK, res.Verified, allIssues(res))
				}
				counts["checked: fails with the JAR issue"]++
			case row.expected == "verifies":
				if !res.Verified {
					t.Fatalf("want verified (minSdk %d maxSdk %d):%s", minSDK, maxSDK, allIssues(res))
				}
				if len(found) == 0 && row.signer != "" && !strings.Contains(row.signer, ":") {
					got := sha256.Sum256(res.Signers[0].Certs[0])
					if hex.EncodeToString(got[:]) != row.signer {
						t.Fatalf("signer %x, want %s", got, row.signer)
					}
				}
				counts["checked: verifies"]++
			case row.expected == "completes":
				counts["checked: completes"]++
			case len(found) == 0 && signingBlockIDs(apk) == nil && strings.HasPrefix(row.file, "v1-"):
				// A JAR-only APK that fails for a reason outside JAR signing (target SDK,
				// sandbox version): its JAR signature itself verifies.
				if !res.Verified {
					t.Fatalf("want the JAR signature to verify (the row fails with %s) (minSdk %d maxSdk %d):%s", row.issue, minSDK, maxSDK, allIssues(res))
				}
				counts["checked: JAR-only APK failing for another reason verifies"]++
			default:
				// Fails for a reason outside JAR signing (v2/v3 problems).
				t.Logf("not asserted: %s %s", row.expected, row.issue)
				counts["not asserted: fails outside JAR signing"]++
			}
		})
	}
	for k, v := range counts {
		t.Logf("%3d %s", v, k)
	}
}

func zipArchiveOrErr(apk []byte) (jarsig.Archive, error) {
	r, err := zipNewReader(apk)
	if err != nil {
		return nil, err
	}
	return zipArchive{r}, nil
}
