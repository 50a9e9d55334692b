package apk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"math"
	"os"
	"sync"
)

// Options tune a verification.
type Options struct {
	// MinSDK and MaxSDK are the platform range to verify for. 0 means: MinSDK from the APK's
	// minSdkVersion, MaxSDK without upper bound (apksigner's --min-sdk-version/--max-sdk-version).
	MinSDK, MaxSDK int
	// V4 is the APK Signature Scheme v4 file to verify too (nil: none).
	V4 *V4Source
	// V4File is VerifyFile's v4 signature path; empty means "<apk>.idsig" when that file exists.
	V4File string
	// NoV4AutoDetect stops VerifyFile from picking up "<apk>.idsig".
	NoV4AutoDetect bool
	// NoFileDigest skips the SHA-256 of the whole file (Result.SHA256 stays empty).
	NoFileDigest bool
}

// VerifyFile verifies the APK at path. A v4 signature "<path>.idsig" is verified too when it exists
// (or the file opts.V4File names). The error is only for I/O (unreadable file) and cancellation; a
// malformed APK is a Result with Verified false and an error naming the offset.
func VerifyFile(ctx context.Context, path string, opts Options) (*Result, error) {
	f, size, err := openAPK(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v4path := opts.V4File
	if v4path == "" && !opts.NoV4AutoDetect && opts.V4 == nil {
		if fi, err := os.Stat(path + ".idsig"); err == nil && fi.Mode().IsRegular() {
			v4path = path + ".idsig"
		}
	}
	if v4path != "" {
		vf, err := safeopen.Open(v4path)
		if err != nil {
			return nil, fmt.Errorf("opening v4 signature: %w", err)
		}
		defer vf.Close()
		vst, err := vf.Stat()
		if err != nil {
			return nil, fmt.Errorf("reading v4 signature %s: %w", v4path, err)
		}
		opts.V4 = &V4Source{Name: v4path, R: vf, Size: vst.Size()}
	}
	res, err := Verify(ctx, f, size, opts)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", path, err)
	}
	res.File = path
	return res, nil
}

// openAPK opens the regular file at path and returns its size.
func openAPK(path string) (*os.File, int64, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening APK: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading APK %s: %w", path, err)
	}
	return f, st.Size(), nil
}

// Verify verifies the APK read through r (size bytes) with apksig's rules. The error is only for
// I/O and cancellation.
func Verify(ctx context.Context, r io.ReaderAt, size int64, opts Options) (*Result, error) {
	res := &Result{Size: size, Errors: []Issue{}, Warnings: []Issue{}, Signers: []Signer{}}
	if opts.V4 != nil {
		res.V4File = opts.V4.Name
	}
	var fileSum []byte
	var fileErr error
	var wg sync.WaitGroup
	fileCtx, cancelFile := context.WithCancel(ctx)
	defer cancelFile()
	if !opts.NoFileDigest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fileSum, fileErr = sha256Range(fileCtx, r, 0, size)
		}()
	}
	v := &verifier{ctx: ctx, r: r, size: size, opts: opts, res: res}
	err := v.run()
	var fe *FormatError
	if err != nil && !errors.As(err, &fe) {
		cancelFile() // an I/O error or cancellation: the file digest is moot
	}
	wg.Wait()
	if err == nil && fileErr != nil {
		err = fileErr
	}
	if fileSum != nil {
		res.SHA256 = hex.EncodeToString(fileSum)
	}
	if err != nil {
		if errors.As(err, &fe) {
			res.addError("MALFORMED_APK", "%v", fe)
			res.Verified = false
			res.Signers = []Signer{}
			return res, nil
		}
		return nil, err
	}
	return res, nil
}

func sha256Range(ctx context.Context, r io.ReaderAt, off, n int64) ([]byte, error) {
	h := sha256.New()
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		k := min(int64(len(buf)), n-done)
		if _, err := r.ReadAt(buf[:k], off+done); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, formatErr(off+done, "file ends early")
			}
			return nil, fmt.Errorf("reading at offset %d: %w", off+done, err)
		}
		h.Write(buf[:k])
		done += k
	}
	return h.Sum(nil), nil
}

type verifier struct {
	ctx  context.Context
	r    io.ReaderAt
	size int64
	opts Options
	res  *Result

	z           *zipArchive
	sb          *signingBlock
	manifest    *Manifest
	manifestErr error
}

func (v *verifier) run() error {
	res := v.res
	z, err := openZip(v.r, v.size)
	if err != nil {
		return err
	}
	v.z = z
	sb, err := findSigningBlock(v.r, z)
	if err != nil && !errors.Is(err, errNoSigningBlock) {
		return err
	}
	v.sb = sb
	limit := z.cdOffset
	if sb != nil {
		limit = sb.offset
	}
	zipErrs, zipWarnings, err := z.checkLocalHeaders(limit)
	if err != nil {
		return err
	}
	// Structural defects fail the APK, but verification goes on so that the signature schemes
	// report what they find too (apksig would report those, and only look at what it reads).
	for _, e := range zipErrs {
		res.addError("MALFORMED_APK", "%v", e)
	}
	for _, w := range zipWarnings {
		res.addWarning("ZIP_LOCAL_HEADER_MISMATCH", "%s", w)
	}
	v.readManifest()
	if m := v.manifest; m != nil {
		res.Package, res.VersionCode, res.VersionName = m.Package, m.VersionCode, m.VersionName
		res.MinSDK, res.TargetSDK = m.MinSDK, m.TargetSDK
	}

	maxSDK := math.MaxInt32
	if v.opts.MaxSDK > 0 {
		maxSDK = v.opts.MaxSDK
	}
	minSDK := v.opts.MinSDK
	if minSDK <= 0 {
		if v.manifestErr != nil {
			return formatErr(-1, "unable to determine the APK's minSdkVersion: %v (or pass a minimum SDK version)", v.manifestErr)
		}
		minSDK = v.manifest.MinSDK
	}
	res.CheckedSDK = SDKRange{Min: minSDK, Max: maxSDK}
	if minSDK > maxSDK {
		res.addError("SDK_RANGE_INVALID", "minSdkVersion %d is above maxSdkVersion %d", minSDK, maxSDK)
		return nil
	}
	return v.verifySchemes(minSDK, maxSDK)
}

func (v *verifier) readManifest() {
	e := v.z.entry("AndroidManifest.xml")
	if e == nil {
		v.manifestErr = errors.New("missing AndroidManifest.xml")
		return
	}
	data, err := e.readAll(maxManifestBytes)
	if err != nil {
		v.manifestErr = err
		return
	}
	v.manifest, v.manifestErr = parseManifest(data)
}

// supportedSchemes are the scheme IDs the v2 and v1 stripping protections know for maxSDK.
func supportedSchemes(maxSDK int) map[int]bool {
	switch {
	case maxSDK >= sdkP:
		return map[int]bool{schemeV2: true, schemeV3: true}
	case maxSDK >= sdkN:
		return map[int]bool{schemeV2: true}
	}
	return map[int]bool{}
}

// verifySchemes is apksig's ApkVerifier.verify once the ZIP is known to be sound. Cheap work (parsing
// the scheme blocks and checking their signatures) runs first; then the content digests, the JAR
// signature, the v4 tree and the file digest run at the same time; then the verdict follows
// apksig's order, stopping at the first scheme with errors.
func (v *verifier) verifySchemes(minSDK, maxSDK int) error {
	res := v.res
	base := len(res.Errors) // ZIP defects already reported: they fail the APK but do not stop the schemes
	found := map[int]bool{}
	supported := supportedSchemes(maxSDK)
	block := func(id uint32) ([]byte, bool) {
		if v.sb == nil {
			return nil, false
		}
		b, ok := v.sb.pairs[id]
		return b, ok
	}

	var r31, r3, r2 *schemeResult
	v31Missing3 := false
	if maxSDK >= sdkN {
		if maxSDK >= sdkT {
			if b, ok := block(BlockV31); ok {
				r31 = parseSchemeBlock(schemeV31, b, maxSDK, maxSDK, v3Params{minSDK: maxSDK, maxSDK: maxSDK, full: true}, supported, found)
				found[schemeV31] = true
			}
		}
		rotationMin := rotationMinSDK(r31)
		if maxSDK >= sdkP {
			if b, ok := block(BlockV3); ok {
				m := max(minSDK, sdkP)
				r3 = parseSchemeBlock(schemeV3, b, m, maxSDK, v3Params{minSDK: m, maxSDK: maxSDK, rotationMinSDK: rotationMin, full: true}, supported, found)
				found[schemeV3] = true
			} else if found[schemeV31] {
				v31Missing3 = true
			}
		}
		if minSDK < sdkP || len(found) == 0 {
			if b, ok := block(BlockV2); ok {
				r2 = parseSchemeBlock(schemeV2, b, max(minSDK, sdkN), maxSDK, v3Params{}, supported, found)
				found[schemeV2] = true
			}
		}
	}
	runV1 := minSDK < sdkN || len(found) == 0
	var v4src *V4Source
	if maxSDK >= sdkN && v.opts.V4 != nil {
		v4src = v.opts.V4
	}

	// Content digests every scheme needs, computed once.
	needed := map[digestAlg]bool{}
	for _, r := range []*schemeResult{r31, r3, r2} {
		if r != nil && !r.containsErrors() {
			for d := range r.digests {
				needed[d] = true
			}
		}
	}

	ctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	var wg sync.WaitGroup
	var digests map[digestAlg][]byte
	var digestErr, v1Err, v4Err error
	var v1res *v1Outcome
	var v4res *v4Result
	if len(needed) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digests, digestErr = v.contentDigests(ctx, needed)
			if digestErr != nil {
				cancel()
			}
		}()
	}
	if runV1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v1res, v1Err = verifyV1(ctx, v.z, minSDK, maxSDK, found)
		}()
	}
	if v4src != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v4res, v4Err = verifyV4(ctx, v.r, v.size, *v4src)
		}()
	}
	wg.Wait()
	for _, err := range []error{digestErr, v1Err, v4Err} {
		if err != nil {
			return err
		}
	}
	if err := v.ctx.Err(); err != nil {
		return err
	}
	for _, r := range []*schemeResult{r31, r3, r2} {
		if r != nil && !r.containsErrors() {
			checkIntegrity(r, digests)
		}
	}
	if r31 != nil && !r31.containsErrors() {
		finishV3(r31, maxSDK, maxSDK, 0)
	}
	if r3 != nil && !r3.containsErrors() {
		finishV3(r3, max(minSDK, sdkP), maxSDK, rotationMinSDK(r31))
	}
	for _, r := range []*schemeResult{r31, r3, r2} {
		if r != nil && !r.containsErrors() {
			r.verified = true
		}
	}

	// The verdict, in apksig's order.
	merge := func(r *schemeResult) bool {
		if r == nil {
			return false
		}
		for _, s := range r.signers {
			res.Errors = append(res.Errors, s.errors...)
			res.Warnings = append(res.Warnings, s.warnings...)
		}
		res.Errors = append(res.Errors, r.errors...)
		res.Warnings = append(res.Warnings, r.warnings...)
		return len(res.Errors) > base
	}
	if merge(r31) {
		return nil
	}
	res.Schemes.V31 = r31 != nil && r31.verified
	if v31Missing3 {
		res.addError("V31_BLOCK_FOUND_WITHOUT_V3_BLOCK", "the APK has a v3.1 signature but no v3 signature (the v3.1 block is meant to be paired with a v3 block)")
		return nil
	}
	if merge(r3) {
		return nil
	}
	res.Schemes.V3 = r3 != nil && r3.verified
	if merge(r2) {
		return nil
	}
	res.Schemes.V2 = r2 != nil && r2.verified
	if v4res != nil {
		for _, s := range v4res.signers {
			res.Errors = append(res.Errors, s.errors...)
		}
		res.Errors = append(res.Errors, v4res.errors...)
		res.Warnings = append(res.Warnings, v4res.warnings...)
		if len(res.Errors) > base {
			return nil
		}
		res.Schemes.V4 = v4res.verified
	}
	if maxSDK >= sdkO {
		if v.manifestErr != nil {
			return formatErr(-1, "reading AndroidManifest.xml: %v", v.manifestErr)
		}
		if v.manifest.TargetSandbox > 1 && len(found) == 0 {
			res.addError("NO_SIG_FOR_TARGET_SANDBOX_VERSION", "targetSandboxVersion %d requires an APK Signature Scheme v2 or later signature", v.manifest.TargetSandbox)
		}
	}
	if runV1 {
		res.Errors = append(res.Errors, v1res.errors...)
		res.Warnings = append(res.Warnings, v1res.warnings...)
		for _, s := range v1res.signers {
			res.Errors = append(res.Errors, s.errors...)
			res.Warnings = append(res.Warnings, s.warnings...)
		}
		res.Schemes.V1 = v1res.verified
	}
	if len(res.Errors) > base {
		return nil
	}

	v.verifySourceStamp(minSDK, maxSDK, r31, r3, r2, v1res, runV1)
	if len(res.Errors) > base {
		return nil
	}

	// v1 and v2 must name the same signers.
	var v1Certs [][]byte
	if res.Schemes.V1 {
		for _, s := range v1res.signers {
			if len(s.certs) > 0 {
				v1Certs = append(v1Certs, s.certs[0])
			}
		}
	}
	if res.Schemes.V1 && res.Schemes.V2 {
		var v2Certs [][]byte
		for _, s := range r2.signers {
			v2Certs = append(v2Certs, s.certs[0].Raw)
		}
		for i, c := range v1Certs {
			if !containsBytes(v2Certs, c) {
				res.addError("V2_SIG_MISSING", "JAR signer %s is not a v2 signer (v2 signature stripped?)", v1res.signers[i].name)
				break
			}
		}
		for i, c := range v2Certs {
			if !containsBytes(v1Certs, c) {
				res.addError("JAR_SIG_MISSING", "v2 signer #%d is not a JAR signer", i+1)
				break
			}
		}
	}
	// v3 must agree with v1/v2: same key, or the v1/v2 key is the root of the v3 lineage.
	var lin *lineage
	if r31 != nil && r31.verified {
		lin = r31.lineage
	}
	if lin == nil && r3 != nil && r3.verified {
		lin = r3.lineage
	}
	if res.Schemes.V3 && (res.Schemes.V1 || res.Schemes.V2) {
		var old []byte
		if res.Schemes.V1 {
			if len(v1res.signers) != 1 {
				res.addError("V3_SIG_MULTIPLE_PAST_SIGNERS", "the APK has %d JAR signers; v3 allows exactly one past signer", len(v1res.signers))
			}
			if len(v1Certs) > 0 {
				old = v1Certs[0]
			}
		} else {
			if len(r2.signers) != 1 {
				res.addError("V3_SIG_MULTIPLE_PAST_SIGNERS", "the APK has %d v2 signers; v3 allows exactly one past signer", len(r2.signers))
			}
			old = r2.signers[0].certs[0].Raw
		}
		if lin == nil {
			if len(r3.signers) != 1 {
				res.addError("V3_SIG_MULTIPLE_SIGNERS", "the APK has %d v3 signers but no rotation lineage", len(r3.signers))
			}
			if !bytes.Equal(old, r3.signers[0].certs[0].Raw) {
				res.addError("V3_SIG_PAST_SIGNERS_MISMATCH", "the v1/v2 signer differs from the v3 signer and there is no rotation lineage linking them")
			}
		} else if lin.index(old) != 0 {
			res.addError("V3_SIG_PAST_SIGNERS_MISMATCH", "the v1/v2 signer is not the oldest certificate of the v3 rotation lineage")
		}
	}
	if res.Schemes.V4 {
		v.checkV4(v4res, r31, r3, r2)
		if len(res.Errors) > base {
			return nil
		}
	}
	// targetSdkVersion >= 30 requires v2 or later, when the range reaches the target SDK.
	if v.manifest != nil {
		t := v.manifest.TargetSDK
		if t >= sdkR && maxSDK >= t && !res.Schemes.V2 && !res.Schemes.V3 && !res.Schemes.V31 {
			res.addError("MIN_SIG_SCHEME_FOR_TARGET_SDK_NOT_MET", "targetSdkVersion %d requires an APK Signature Scheme v2 or later signature", t)
		}
	}
	if len(res.Errors) > 0 {
		return nil
	}
	res.Verified = true
	v.fillSigners(minSDK, maxSDK, r31, r3, r2, v1res, lin)
	return nil
}

// rotationMinSDK is the lowest SDK a sound v3.1 block targets (0 without one): the v3 block
// must stop where the v3.1 signers take over.
func rotationMinSDK(r31 *schemeResult) int {
	if r31 == nil || r31.containsErrors() {
		return 0
	}
	m := 0
	for i, s := range r31.signers {
		if i == 0 || s.minSDK < m {
			m = s.minSDK
		}
	}
	return m
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// checkIntegrity compares each signer's content digests with the APK's.
func checkIntegrity(r *schemeResult, actual map[digestAlg][]byte) {
	for _, s := range r.signers {
		s.verified = map[digestAlg][]byte{}
		for _, d := range s.digests {
			alg := findSigAlg(d.algID)
			if alg == nil || !r.digests[alg.digest] {
				continue
			}
			got := actual[alg.digest]
			if !bytes.Equal(d.value, got) {
				code := "V2_SIG_APK_DIGEST_DID_NOT_VERIFY"
				if r.scheme != schemeV2 {
					code = "V3_SIG_APK_DIGEST_DID_NOT_VERIFY"
				}
				s.addError(code, "%s signer #%d: APK %s digest %x does not match the signed %x (the APK was modified after signing)", schemeName(r.scheme), s.index+1, alg.digest, got, d.value)
				continue
			}
			s.verified[alg.digest] = got
		}
	}
}

// contentDigests computes the v2/v3 content digests over the APK outside the signing block: the
// entries, the central directory, and the EOCD with its CD offset pointing at the signing block.
func (v *verifier) contentDigests(ctx context.Context, needed map[digestAlg]bool) (map[digestAlg][]byte, error) {
	z, sb := v.z, v.sb
	eocd := append([]byte(nil), z.eocd...)
	if z.zip64 {
		// ZIP64: patch the ZIP64 EOCD record's CD offset and the locator's record offset.
		le := binary.LittleEndian
		delta := uint64(z.cdOffset - sb.offset)
		le.PutUint64(eocd[48:], uint64(sb.offset))
		recLen := le.Uint64(eocd[4:]) + 12
		loc := eocd[recLen:]
		le.PutUint64(loc[8:], le.Uint64(loc[8:])-delta)
	} else {
		binary.LittleEndian.PutUint32(eocd[16:], uint32(sb.offset))
	}
	segs := []segment{
		{r: v.r, off: 0, size: sb.offset},
		{r: v.r, off: z.cdOffset, size: z.eocdOffset - z.cdOffset},
		{mem: eocd, size: int64(len(eocd))},
	}
	var algs []digestAlg
	for _, d := range []digestAlg{chunkedSHA256, chunkedSHA512} {
		if needed[d] {
			algs = append(algs, d)
		}
	}
	out := map[digestAlg][]byte{}
	if len(algs) > 0 {
		m, err := chunkedDigests(ctx, segs, algs)
		if err != nil {
			return nil, err
		}
		out = m
	}
	if needed[verityChunkedSHA256] {
		if sb.offset%verityBlock != 0 || sb.size%verityBlock != 0 {
			// apksig throws here; the signature cannot be honoured.
			return nil, formatErr(sb.offset, "APK Signing Block (offset %d, size %d) is not aligned on 4 KiB as the verity digest requires", sb.offset, sb.size)
		}
		root, _, err := verityTree(ctx, segs, make([]byte, 8))
		if err != nil {
			return nil, err
		}
		var total int64
		for _, s := range segs {
			total += s.size
		}
		d := append(root, make([]byte, 8)...)
		binary.LittleEndian.PutUint64(d[32:], uint64(total))
		out[verityChunkedSHA256] = d
	}
	return out, nil
}

// bestV4Digest is the content digest a v4 signature names: SHA-512 if the signer has one, else the
// verity digest, else SHA-256.
func bestV4Digest(s *schemeSigner) []byte {
	for _, want := range []digestAlg{chunkedSHA512, verityChunkedSHA256, chunkedSHA256} {
		for _, d := range s.digests {
			if a := findSigAlg(d.algID); a != nil && a.digest == want {
				return d.value
			}
		}
	}
	return nil
}

func (v *verifier) checkV4(v4 *v4Result, r31, r3, r2 *schemeResult) {
	res := v.res
	check := func(signers []*schemeSigner, v4s *v4Signer, scheme int) {
		if len(signers) != 1 {
			res.addError("V4_SIG_MULTIPLE_SIGNERS", "%s has %d signers; v4 needs exactly one", schemeName(scheme), len(signers))
		}
		if len(signers) == 0 || v4s.cert == nil {
			return
		}
		if !bytes.Equal(v4s.cert.Raw, signers[0].certs[0].Raw) {
			res.addError("V4_SIG_V2_V3_SIGNERS_MISMATCH", "the v4 signer differs from the %s signer", schemeName(scheme))
		}
		want := bestV4Digest(signers[0])
		if !bytes.Equal(v4s.apkDigest, want) {
			sch := 3
			if scheme == schemeV2 {
				sch = 2
			}
			res.addError("V4_SIG_V2_V3_DIGESTS_MISMATCH", "the v4 signature names APK digest %x, the v%d signer %x", v4s.apkDigest, sch, want)
		}
	}
	switch {
	case res.Schemes.V3:
		want := 1
		if res.Schemes.V31 {
			want = 2
		}
		if len(v4.signers) != want {
			if res.Schemes.V31 {
				res.addError("V41_SIG_NEEDS_TWO_SIGNERS", "the APK is signed with v3.1, so its v4 signature needs two signing infos, not %d", len(v4.signers))
			} else {
				res.addError("V4_SIG_MULTIPLE_SIGNERS", "the v4 signature has %d signing infos, expected 1", len(v4.signers))
			}
			return
		}
		check(r3.signers, v4.signers[0], schemeV3)
		if res.Schemes.V31 {
			check(r31.signers, v4.signers[1], schemeV31)
		}
	case res.Schemes.V2:
		if len(v4.signers) != 1 {
			res.addError("V4_SIG_MULTIPLE_SIGNERS", "the v4 signature has %d signing infos, expected 1", len(v4.signers))
		}
		check(r2.signers, v4.signers[0], schemeV2)
	default:
		res.addError("V4_SIG_NO_V2_V3_SIGNATURE", "a v4 signature needs a verified v2 or v3 signature")
	}
}

// fillSigners sets Signers (apksig's getSignerCertificates), SDKSigners and Lineage of a verified APK.
func (v *verifier) fillSigners(minSDK, maxSDK int, r31, r3, r2 *schemeResult, v1 *v1Outcome, lin *lineage) {
	res := v.res
	res.lineage = lin
	res.Lineage = lineageNodes(lin)
	switch {
	case res.Schemes.V31 || res.Schemes.V3:
		var all []*schemeSigner
		var main *schemeSigner
		scheme := "v3"
		if res.Schemes.V31 {
			main = r31.signers[len(r31.signers)-1]
			scheme = "v3.1"
			all = append(all, r31.signers...)
		} else {
			main = r3.signers[len(r3.signers)-1]
		}
		res.Signers = append(res.Signers, signerOf(main.certs[0], main.minSDK, main.maxSDK, scheme))
		if res.Schemes.V3 {
			all = append(all, r3.signers...)
		}
		if len(all) > 1 {
			for _, s := range all {
				sch := "v3"
				if r31 != nil && containsSigner(r31.signers, s) {
					sch = "v3.1"
				}
				sg := signerOf(s.certs[0], s.minSDK, s.maxSDK, sch)
				sg.DevRelease = s.targetsDevRelease()
				res.SDKSigners = append(res.SDKSigners, sg)
			}
		}
	case res.Schemes.V2:
		for _, s := range r2.signers {
			res.Signers = append(res.Signers, signerOf(s.certs[0], max(minSDK, sdkN), maxSDK, "v2"))
		}
	case res.Schemes.V1:
		for _, s := range v1.signers {
			if len(s.certs) == 0 {
				continue
			}
			c, err := parseCertificate(s.certs[0])
			if err != nil {
				res.addWarning("MALFORMED_CERTIFICATE", "JAR signer %s: %v", s.name, err)
				continue
			}
			res.Signers = append(res.Signers, signerOf(c, minSDK, maxSDK, "v1"))
		}
	}
}

func containsSigner(list []*schemeSigner, s *schemeSigner) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
