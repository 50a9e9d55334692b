package apk

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/provkit/provkit/firmware/apk/cert"
	"github.com/provkit/provkit/firmware/apk/jarsig"
	"github.com/provkit/provkit/firmware/apk/pkcs7"
)

// v1Signer and v1Outcome are JAR signature verification's answer, as package jarsig gives it.
type v1Signer struct {
	name             string
	certs            [][]byte // raw certificates, [0] = the signer's
	errors, warnings []Issue
}

type v1Outcome struct {
	verified         bool
	signers          []v1Signer
	errors, warnings []Issue
}

// Entries implements jarsig.Archive: the non-directory entries in central-directory order.
func (a *zipArchive) Entries() []jarsig.Entry {
	out := make([]jarsig.Entry, len(a.entries))
	for i, e := range a.entries {
		out[i] = e
	}
	return out
}

// LocalHeaderOffset implements jarsig.LocalHeaderOffsetter: jarsig reads entries in file order.
func (e *zipEntry) LocalHeaderOffset() uint64 { return uint64(e.lfhOffset) }

func issues(in []jarsig.Issue) []Issue {
	out := make([]Issue, 0, len(in))
	for _, i := range in {
		out = append(out, Issue{Code: i.Code, Message: i.Message})
	}
	return out
}

// verifyV1 verifies the APK's JAR signature with package jarsig. found holds the v2+ schemes
// present in the APK Signing Block (for the X-Android-APK-Signed anti-stripping check).
func verifyV1(ctx context.Context, z *zipArchive, minSDK, maxSDK int, found map[int]bool) (*v1Outcome, error) {
	ids := map[int]bool{}
	for id := range found {
		if id == schemeV2 || id == schemeV3 {
			ids[id] = true
		}
	}
	r, err := jarsig.Verify(ctx, z, jarsig.Options{MinSDK: minSDK, MaxSDK: maxSDK, FoundSchemeIDs: ids})
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			return nil, err
		}
		if errors.Is(err, jarsig.ErrFormat) {
			return nil, formatErr(-1, "%v", err)
		}
		return nil, err
	}
	out := &v1Outcome{verified: r.Verified, errors: issues(r.Errors), warnings: issues(r.Warnings)}
	for _, s := range r.Signers {
		out.signers = append(out.signers, v1Signer{name: s.Name, certs: s.Certs, errors: issues(s.Errors), warnings: issues(s.Warnings)})
	}
	// Android ignores these signers; their problems are worth a warning, never an error.
	for _, s := range r.IgnoredSigners {
		for _, e := range append(s.Errors, s.Warnings...) {
			out.warnings = append(out.warnings, Issue{Code: e.Code, Message: fmt.Sprintf("ignored JAR signer %s: %s", s.Name, e.Message)})
		}
	}
	return out, nil
}

// v1Certificates returns the JAR signers' certificates without verifying anything (for Inspect):
// for each META-INF signature block, the certificate its SignerInfo names.
func v1Certificates(ctx context.Context, z *zipArchive) []Signer {
	var names []string
	blocks := map[string]*zipEntry{}
	for _, e := range z.entries {
		up := strings.ToUpper(e.name)
		if !strings.HasPrefix(up, "META-INF/") || strings.Count(e.name, "/") != 1 {
			continue
		}
		if strings.HasSuffix(up, ".RSA") || strings.HasSuffix(up, ".DSA") || strings.HasSuffix(up, ".EC") {
			names = append(names, e.name)
			blocks[e.name] = e
		}
	}
	sort.Strings(names)
	var out []Signer
	for _, n := range names {
		if ctx.Err() != nil {
			break
		}
		data, err := blocks[n].readAll(pkcs7.MaxSize)
		if err != nil {
			continue
		}
		sd, err := pkcs7.Parse(data)
		if err != nil || len(sd.SignerInfos) == 0 {
			continue
		}
		var certs []*cert.Certificate
		for _, raw := range sd.Certificates {
			if c, err := cert.Parse(raw); err == nil {
				certs = append(certs, c)
			}
		}
		c := sd.SignerInfos[0].FindCertificate(certs)
		if c == nil {
			continue
		}
		ci, err := parseCertificate(c.Raw)
		if err != nil {
			continue
		}
		out = append(out, signerOf(ci, 1, 1<<31-1, "v1"))
	}
	return out
}
