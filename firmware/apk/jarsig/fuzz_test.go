package jarsig_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/provkit/provkit/firmware/apk/internal/jartest"
	"github.com/provkit/provkit/firmware/apk/jarsig"
)

// FuzzVerify runs Verify on arbitrary ZIPs (read with archive/zip) at arbitrary API level
// ranges: it must not panic, and a verified result must have signers with certificates and no
// errors.
func FuzzVerify(f *testing.F) {
	for _, name := range []string{"v1-only-with-signed-attrs.apk", "v1-only-two-signers.apk", "v2-stripped.apk", "v1-only-with-cr-in-entry-name.apk"} {
		f.Add(readFile(f, filepath.Join(suiteDir, name)), 18, 30)
	}
	keys(f)
	f.Add(jartest.Build(jartest.Spec{Files: files()[:2], Signers: []jartest.Signer{signerA()}}), 18, math.MaxInt)
	f.Fuzz(func(t *testing.T, apk []byte, min, max int) {
		if min > max {
			min, max = max, min
		}
		r, err := zipNewReader(apk)
		if err != nil {
			return
		}
		res, err := jarsig.Verify(context.Background(), zipArchive{r}, jarsig.Options{MinSDK: min, MaxSDK: max, FoundSchemeIDs: map[int]bool{2: min%2 == 0}})
		if err != nil || !res.Verified {
			return
		}
		if len(res.Errors) > 0 || len(res.Signers) == 0 {
			t.Fatalf("verified with %d errors and %d signers", len(res.Errors), len(res.Signers))
		}
		for _, s := range res.Signers {
			if len(s.Certs) == 0 || len(s.Errors) > 0 {
				t.Fatalf("verified signer %s has %d certificates and errors %v", s.Name, len(s.Certs), s.Errors)
			}
		}
	})
}
