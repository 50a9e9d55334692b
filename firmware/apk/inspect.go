package apk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Info is what Inspect reads from an APK, without a verdict: nothing here says the APK is
// authentic (use Verify for that).
type Info struct {
	File                 string        `json:"file"`
	Size                 int64         `json:"size"`
	Package              string        `json:"package"`
	VersionCode          int64         `json:"versionCode"`
	VersionName          string        `json:"versionName"`
	MinSDK               int           `json:"minSdk"`
	TargetSDK            int           `json:"targetSdk"`
	RequestedPermissions []string      `json:"requestedPermissions"`
	NativeABIs           []string      `json:"nativeAbis"`
	Entries              int           `json:"entries"`
	Schemes              SchemesFound  `json:"schemesPresent"`
	Signers              []Signer      `json:"signers"`
	Lineage              []LineageNode `json:"lineage,omitempty"`
	// Problems are what could not be read (a malformed manifest, a damaged signature block); they
	// are not a verdict.
	Problems []Issue `json:"problems"`
}

// SchemesFound tells which signatures an APK carries (not whether they verify).
type SchemesFound struct {
	V1          bool `json:"v1"`
	V2          bool `json:"v2"`
	V3          bool `json:"v3"`
	V31         bool `json:"v31"`
	V4          bool `json:"v4"`
	SourceStamp bool `json:"sourceStamp"`
}

// InspectFile reads the APK at path (and notes a "<path>.idsig" next to it).
func InspectFile(ctx context.Context, path string) (*Info, error) {
	f, size, err := openAPK(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := Inspect(ctx, f, size)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	info.File = path
	if fi, err := os.Stat(path + ".idsig"); err == nil && fi.Mode().IsRegular() {
		info.Schemes.V4 = true
	}
	return info, nil
}

// Inspect reads an APK's manifest facts, native ABIs and signer certificates. The error is only for
// I/O; a malformed APK yields an Info with Problems.
func Inspect(ctx context.Context, r io.ReaderAt, size int64) (*Info, error) {
	info := &Info{Size: size, RequestedPermissions: []string{}, NativeABIs: []string{}, Signers: []Signer{}, Problems: []Issue{}}
	problem := func(code, format string, args ...any) {
		info.Problems = append(info.Problems, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	z, err := openZip(r, size)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			problem("MALFORMED_APK", "%v", fe)
			return info, nil
		}
		return nil, err
	}
	info.Entries = len(z.entries)
	sb, err := findSigningBlock(r, z)
	if err != nil && !errors.Is(err, errNoSigningBlock) {
		var fe *FormatError
		if !errors.As(err, &fe) {
			return nil, err
		}
		problem("MALFORMED_APK", "%v", fe)
	}
	limit := z.cdOffset
	if sb != nil {
		limit = sb.offset
	}
	errs, _, err := z.checkLocalHeaders(limit)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		problem("MALFORMED_APK", "%v", e)
	}
	if e := z.entry("AndroidManifest.xml"); e == nil {
		problem("MISSING_MANIFEST", "the APK has no AndroidManifest.xml")
	} else if data, err := e.readAll(maxManifestBytes); err != nil {
		problem("MALFORMED_MANIFEST", "reading AndroidManifest.xml: %v", err)
	} else if m, err := parseManifest(data); err != nil {
		problem("MALFORMED_MANIFEST", "%v", err)
	} else {
		info.Package, info.VersionCode, info.VersionName = m.Package, m.VersionCode, m.VersionName
		info.MinSDK, info.TargetSDK = m.MinSDK, m.TargetSDK
		if m.RequestedPermissions != nil {
			info.RequestedPermissions = m.RequestedPermissions
		}
	}
	abis := map[string]bool{}
	for _, e := range z.entries {
		if rest, ok := strings.CutPrefix(e.name, "lib/"); ok {
			if abi, file, ok := strings.Cut(rest, "/"); ok && abi != "" && file != "" {
				abis[abi] = true
			}
		}
		up := strings.ToUpper(e.name)
		if strings.HasPrefix(up, "META-INF/") && strings.HasSuffix(up, ".SF") {
			info.Schemes.V1 = true
		}
	}
	for abi := range abis {
		info.NativeABIs = append(info.NativeABIs, abi)
	}
	sort.Strings(info.NativeABIs)

	if sb != nil {
		_, info.Schemes.V2 = sb.pairs[BlockV2]
		_, info.Schemes.V3 = sb.pairs[BlockV3]
		_, info.Schemes.V31 = sb.pairs[BlockV31]
		_, info.Schemes.SourceStamp = sb.pairs[BlockStampV2]
		// The newest scheme present names the signers Android uses. Signatures over the signed
		// data are checked (cheap); the APK's content digests are not.
		for _, c := range []struct {
			id     uint32
			scheme int
			name   string
		}{{BlockV31, schemeV31, "v3.1"}, {BlockV3, schemeV3, "v3"}, {BlockV2, schemeV2, "v2"}} {
			b, ok := sb.pairs[c.id]
			if !ok {
				continue
			}
			// v2 signatures are checked for the platforms that read them (Android 7+).
			res := parseSchemeBlock(c.scheme, b, sdkN, 1<<31-1, v3Params{minSDK: sdkN, maxSDK: 1<<31 - 1}, map[int]bool{2: true, 3: true}, map[int]bool{2: true, 3: true, 31: true})
			for _, s := range res.signers {
				for _, e := range s.errors {
					problem(e.Code, "%s", e.Message)
				}
				if len(s.certs) == 0 {
					continue
				}
				minSDK, maxSDK := s.minSDK, s.maxSDK
				if c.scheme == schemeV2 {
					minSDK, maxSDK = sdkN, 1<<31-1
				}
				info.Signers = append(info.Signers, signerOf(s.certs[0], minSDK, maxSDK, c.name))
				if s.lineage != nil && info.Lineage == nil {
					info.Lineage = lineageNodes(s.lineage)
				}
			}
			for _, e := range res.errors {
				problem(e.Code, "%s", e.Message)
			}
			if c.scheme != schemeV2 {
				// apksigner's Signer #1 is the last v3/v3.1 signer (the newest platforms' key).
				for i, j := 0, len(info.Signers)-1; i < j; i, j = i+1, j-1 {
					info.Signers[i], info.Signers[j] = info.Signers[j], info.Signers[i]
				}
			}
			if len(info.Signers) > 0 {
				break
			}
		}
	}
	if len(info.Signers) == 0 && info.Schemes.V1 {
		info.Signers = append(info.Signers, v1Certificates(ctx, z)...)
	}
	return info, nil
}
