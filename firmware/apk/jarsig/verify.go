package jarsig

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/provkit/provkit/firmware/apk/cert"
	"github.com/provkit/provkit/firmware/apk/pkcs7"
)

// Archive is the ZIP archive being verified.
type Archive interface {
	// Entries returns the entries in central directory order. Directory entries (names
	// ending in "/") may be included; Verify ignores them, as apksig does.
	Entries() []Entry
}

// Entry is one ZIP entry.
type Entry interface {
	Name() string
	UncompressedSize() uint64
	// Open returns the entry's uncompressed bytes, bounded by UncompressedSize; reading fails
	// when the data does not match its CRC or declared size.
	Open() (io.ReadCloser, error)
}

// LocalHeaderOffsetter may be implemented by an Entry: Verify then reads entries in the order of
// their local headers, as apksig does (sequential reads, and the same "first signed entry" in
// JAR_SIG_ZIP_ENTRY_SIGNERS_MISMATCH messages). Without it, central directory order is used.
type LocalHeaderOffsetter interface {
	LocalHeaderOffset() uint64
}

// Options says for which Android platform versions to verify.
type Options struct {
	// MinSDK and MaxSDK bound the API levels to verify for (MaxSDK = math.MaxInt: no bound).
	MinSDK, MaxSDK int
	// FoundSchemeIDs holds the APK Signature Scheme IDs (2, 3) whose blocks are present in
	// the APK and verified, for the X-Android-APK-Signed anti-stripping check.
	FoundSchemeIDs map[int]bool
}

// Signer is one JAR signer.
type Signer struct {
	// Name is the signature block's name without "META-INF/", e.g. "CERT.RSA".
	Name string
	// Certs holds the signer's certificate chain exactly as encoded in the signature block:
	// Certs[0] is the signing certificate (empty when the block did not verify).
	Certs            [][]byte
	Errors, Warnings []Issue
}

// Result is the outcome of Verify.
type Result struct {
	// Verified is true when the JAR signature verifies on every API level of the range.
	Verified bool
	// Signers are the signers Android uses (with their errors when verification failed).
	Signers []Signer
	// IgnoredSigners are signers Android ignores: their signature file is unusable or signs
	// none of the entries the others sign. Their errors do not fail verification.
	IgnoredSigners   []Signer
	Errors, Warnings []Issue
}

// ErrFormat is wrapped by Verify's errors for an APK that cannot be read as a signed JAR at all
// (apksig throws ApkFormatException or IOException): a signature file larger than the limits
// below, an entry whose bytes do not match its declared size. Other Verify errors come from the
// Archive (I/O, or its own format errors) or from the context.
var ErrFormat = errors.New("malformed JAR signature entry")

// Limits on the metadata files Verify reads into memory.
const (
	// MaxManifestSize bounds META-INF/MANIFEST.MF and each .SF file. A manifest holds about
	// 100 to 200 bytes per entry, and an APK (no ZIP64) has at most 65535 entries.
	MaxManifestSize = 32 << 20
	// MaxMetadataSize bounds the manifest, signature files and signature blocks together: they
	// are held in memory at once, and a hostile APK could otherwise declare ten 32 MiB
	// signature files that compress to almost nothing.
	MaxMetadataSize = 96 << 20
	// MaxSignatureBlockSize bounds each .RSA/.DSA/.EC file.
	MaxSignatureBlockSize = pkcs7.MaxSize
	// MaxSigners is apksig's limit on the number of JAR signers.
	MaxSigners = 10
)

const manifestName = "META-INF/MANIFEST.MF"

// signer is the verification state of one signer.
type signer struct {
	name, blockName, sfName string
	block, sf               Entry
	sfBytes                 []byte
	sfEntryNames            map[string]bool
	certs                   [][]byte
	ignored                 bool
	issues
}

func (s *signer) result() Signer {
	return Signer{Name: s.name, Certs: s.certs, Errors: s.errors, Warnings: s.warnings}
}

type verifier struct {
	ctx     context.Context
	opts    Options
	entries []Entry
	names   []string // javaString(entry.Name()), parallel to entries
	res     *Result
	issues
	hashes *hashSet
}

// Verify verifies the JAR signature of a. It returns an error only when a cannot be read (see
// ErrFormat) or ctx is done; everything else is reported in the Result.
func Verify(ctx context.Context, a Archive, opts Options) (*Result, error) {
	if opts.MinSDK > opts.MaxSDK {
		return nil, fmt.Errorf("verifying JAR signature: min SDK %d above max SDK %d", opts.MinSDK, opts.MaxSDK)
	}
	v := &verifier{ctx: ctx, opts: opts, res: &Result{}}
	// Directory entries do not exist for JAR verification: apksig drops them when it reads the
	// central directory (so a manifest section naming one names a missing entry).
	for _, e := range a.Entries() {
		if n := javaString([]byte(e.Name())); !strings.HasSuffix(n, "/") {
			v.entries = append(v.entries, e)
			v.names = append(v.names, n)
		}
	}
	err := v.verify()
	v.res.Errors, v.res.Warnings = v.errors, v.warnings
	if err != nil {
		return nil, err
	}
	return v.res, nil
}

func (v *verifier) failed() bool {
	if len(v.errors) > 0 {
		return true
	}
	for _, s := range v.res.Signers {
		if len(s.Errors) > 0 {
			return true
		}
	}
	return false
}

func (v *verifier) verify() error {
	// Duplicate entry names: reported once per name.
	seen := make(map[string]bool, len(v.names))
	reported := map[string]bool{}
	for _, n := range v.names {
		if seen[n] && !reported[n] {
			reported[n] = true
			v.addError(DuplicateZipEntry, "duplicate entry %q", n)
		}
		seen[n] = true
	}
	if v.failed() {
		return nil
	}

	// Find the manifest, signature files and signature blocks.
	var manifest Entry
	sfs := map[string]Entry{}
	var blocks []int
	for i, n := range v.names {
		if !strings.HasPrefix(n, "META-INF/") {
			continue
		}
		switch {
		case manifest == nil && n == manifestName:
			manifest = v.entries[i]
		case strings.HasSuffix(n, ".SF"):
			sfs[n] = v.entries[i]
		case strings.HasSuffix(n, ".RSA"), strings.HasSuffix(n, ".DSA"), strings.HasSuffix(n, ".EC"):
			blocks = append(blocks, i)
		}
	}
	if manifest == nil {
		v.addError(NoManifest, "missing %s", manifestName)
		return nil
	}
	blockEntries := make([]Entry, len(blocks))
	blockNames := make([]string, len(blocks))
	for k, i := range blocks {
		blockEntries[k], blockNames[k] = v.entries[i], v.names[i]
	}
	if err := checkMetadataSize(manifest, sfs, blockEntries, blockNames); err != nil {
		return err
	}
	mfBytes, err := v.readSmall(manifest, manifestName, MaxManifestSize)
	if err != nil {
		return err
	}
	mainSection, sections := v.parseManifest(mfBytes, seen)
	if v.failed() {
		return nil
	}

	// Pair each signature block with its signature file.
	var signers []*signer
	for _, i := range blocks {
		blockName := v.names[i]
		sfName := blockName[:strings.LastIndexByte(blockName, '.')] + ".SF"
		sf, ok := sfs[sfName]
		if !ok {
			v.addWarning(MissingFile, "%s has no matching signature file %s", blockName, sfName)
			continue
		}
		signers = append(signers, &signer{
			name: strings.TrimPrefix(blockName, "META-INF/"), blockName: blockName, sfName: sfName,
			block: v.entries[i], sf: sf,
		})
	}
	if len(signers) == 0 {
		v.addError(NoSignatures, "no JAR signatures")
		return nil
	}
	if len(signers) > MaxSigners {
		v.addError(MaxSignaturesExceeded, "JAR signing supports at most %d signers, found %d", MaxSigners, len(signers))
		return nil
	}

	// Each signature block must verify against its signature file. Any error stops
	// verification, as on Android.
	for _, s := range signers {
		if err := v.verifyBlock(s); err != nil {
			return err
		}
		if len(s.errors) > 0 {
			v.res.Signers = append(v.res.Signers, s.result())
		}
	}
	if v.failed() {
		return nil
	}

	// Each signature file must verify against the manifest.
	var remaining []*signer
	for _, s := range signers {
		v.verifySigFile(s, mfBytes, mainSection, sections)
		switch {
		case s.ignored:
			v.res.IgnoredSigners = append(v.res.IgnoredSigners, s.result())
		case len(s.errors) > 0:
			v.res.Signers = append(v.res.Signers, s.result())
		default:
			remaining = append(remaining, s)
		}
	}
	if v.failed() {
		return nil
	}
	if len(remaining) == 0 {
		v.addError(NoSignatures, "no JAR signatures")
		return nil
	}

	// Entries must match the manifest and be signed by one set of signers.
	apkSigners, err := v.verifyEntries(sections, remaining)
	if err != nil {
		return err
	}
	if v.failed() {
		return nil
	}

	// Files in META-INF/ are not covered by the signature, except the signature's own.
	protected := map[string]bool{manifestName: true}
	for _, s := range apkSigners {
		protected[s.blockName], protected[s.sfName] = true, true
	}
	for _, n := range v.names {
		if strings.HasPrefix(n, "META-INF/") && !strings.HasSuffix(n, "/") && !protected[n] {
			v.addWarning(UnprotectedZipEntry, "%s is not protected by the signature: unauthorized changes to it will not be detected; delete it or move it outside META-INF/", n)
		}
	}
	used := map[*signer]bool{}
	for _, s := range apkSigners {
		used[s] = true
	}
	for _, s := range remaining {
		if used[s] {
			v.res.Signers = append(v.res.Signers, s.result())
		} else {
			v.res.IgnoredSigners = append(v.res.IgnoredSigners, s.result())
		}
	}
	v.res.Verified = true
	return nil
}

// readSmall reads a metadata entry whole, refusing sizes above limit before allocating.
func (v *verifier) readSmall(e Entry, name string, limit int) ([]byte, error) {
	if err := v.ctx.Err(); err != nil {
		return nil, err
	}
	size := e.UncompressedSize()
	if size > uint64(limit) {
		return nil, fmt.Errorf("%w: %s declares %d uncompressed bytes, more than the %d-byte limit for JAR signature files", ErrFormat, name, size, limit)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	defer rc.Close()
	// Grow with the data actually read rather than trusting the declared size.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20)))
	n, err := buf.ReadFrom(io.LimitReader(rc, int64(size)+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if uint64(n) != size {
		return nil, fmt.Errorf("%w: %s holds %d bytes or more, %d declared", ErrFormat, name, n, size)
	}
	return buf.Bytes(), nil
}

// checkMetadataSize refuses, before reading any of them, a manifest, signature files and
// signature blocks that together declare more than MaxMetadataSize bytes.
func checkMetadataSize(manifest Entry, sfs map[string]Entry, blocks []Entry, blockNames []string) error {
	total := min(manifest.UncompressedSize(), MaxManifestSize+1) // a single oversized file gets its own message
	for i, b := range blocks {
		sf, ok := sfs[blockNames[i][:strings.LastIndexByte(blockNames[i], '.')]+".SF"]
		if !ok {
			continue
		}
		total += min(b.UncompressedSize(), MaxSignatureBlockSize+1) + min(sf.UncompressedSize(), MaxManifestSize+1)
	}
	if total > MaxMetadataSize {
		return fmt.Errorf("%w: the manifest, signature files and signature blocks declare %d bytes together, more than the %d-byte limit", ErrFormat, total, MaxMetadataSize)
	}
	return nil
}

// parseManifest splits the manifest into its main section and its named sections, reporting
// unnamed and duplicate sections and sections naming absent entries.
func (v *verifier) parseManifest(mf []byte, entryNames map[string]bool) (*section, map[string]*section) {
	r := &manifestReader{data: mf}
	main := r.readSection()
	byName := map[string]*section{}
	for i, s := range r.readSections() {
		if !s.named {
			v.addError(UnnamedManifestSection, "malformed %s: section #%d has no name", manifestName, i+1)
			continue
		}
		if _, dup := byName[s.name]; dup {
			byName[s.name] = s
			v.addError(DuplicateManifestSection, "duplicate section in %s: %q", manifestName, s.name)
			continue
		}
		byName[s.name] = s
		if !entryNames[s.name] {
			v.addError(MissingZipEntryInManifest, "entry %q named in %s is not in the APK", s.name, manifestName)
		}
	}
	return main, byName
}

// verifyBlock checks a signer's signature block against its signature file.
func (v *verifier) verifyBlock(s *signer) error {
	block, err := v.readSmall(s.block, s.blockName, MaxSignatureBlockSize)
	if err != nil {
		return err
	}
	if s.sfBytes, err = v.readSmall(s.sf, s.sfName, MaxManifestSize); err != nil {
		return err
	}
	sd, err := pkcs7.Parse(block)
	if err != nil {
		s.addError(ParseException, "parsing %s: %v", s.blockName, err)
		return nil
	}
	if len(sd.SignerInfos) == 0 {
		s.addError(NoSigners, "%s contains no signers", s.blockName)
		return nil
	}
	// Before Android N only the first SignerInfo is tried; from N every one, and the first
	// that verifies is used.
	infos := sd.SignerInfos
	if v.opts.MinSDK < sdkN {
		infos = infos[:1]
	}
	var certs []*cert.Certificate
	var signingCert *cert.Certificate
	for i := range infos {
		if certs == nil {
			if certs, err = sd.ParseCertificates(); err != nil {
				s.addError(ParseException, "parsing %s: %v", s.blockName, err)
				return nil
			}
		}
		c, err := sd.Verify(&infos[i], certs, s.sfBytes, pkcs7.VerifyOptions{MinSDK: v.opts.MinSDK, MaxSDK: v.opts.MaxSDK})
		var unsupported *pkcs7.UnsupportedAlgorithmError
		switch {
		case errors.As(err, &unsupported):
			levels := make([]string, len(unsupported.Unsupported))
			for j, r := range unsupported.Unsupported {
				levels[j] = r.String()
			}
			s.addError(UnsupportedSigAlg, "%s uses digest algorithm %s and signature algorithm %s, not supported on API level(s) %s for which this APK is being verified",
				s.blockName, pkcs7.FriendlyName(unsupported.DigestOID), pkcs7.FriendlyName(unsupported.SignatureOID), strings.Join(levels, ", "))
			return nil
		case errors.Is(err, pkcs7.ErrDecoding):
			s.addError(ParseException, "parsing %s: %v", s.blockName, err)
			return nil
		case err != nil:
			s.addError(VerifyException, "verifying %s against %s: %v", s.blockName, s.sfName, err)
			return nil
		case c != nil && signingCert == nil:
			signingCert = c
		}
	}
	if signingCert == nil {
		s.addError(DidNotVerify, "%s did not verify against %s", s.blockName, s.sfName)
		return nil
	}
	for _, c := range pkcs7.Chain(certs, signingCert) {
		s.certs = append(s.certs, c.Raw)
	}
	return nil
}

// supportedSchemes returns the APK Signature Scheme IDs the X-Android-APK-Signed check knows on
// some level of the range, as apksig decides from the maximum level.
func supportedSchemes(maxSDK int) map[int]string {
	switch {
	case maxSDK >= sdkP:
		return map[int]string{2: "APK Signature Scheme v2", 3: "APK Signature Scheme v3"}
	case maxSDK >= sdkN:
		return map[int]string{2: "APK Signature Scheme v2"}
	}
	return nil
}

// verifySigFile checks a signer's signature file against the manifest.
func (v *verifier) verifySigFile(s *signer, mf []byte, mfMain *section, mfSections map[string]*section) {
	r := &manifestReader{data: s.sfBytes}
	sfMain := r.readSection()
	if _, ok := sfMain.get("Signature-Version"); !ok {
		s.addError(MissingVersionAttr, "malformed %s: missing Signature-Version attribute", s.sfName)
		s.ignored = true
		return
	}
	if v.opts.MaxSDK >= sdkN {
		v.checkStripping(s, sfMain)
		if len(s.errors) > 0 {
			return
		}
	}
	createdBy, _ := sfMain.get("Created-By")
	signtool := strings.Contains(createdBy, "signtool")

	// Digest of the whole manifest: a mismatch is only a warning, the sections are then
	// checked one by one.
	suffix := "-Digest-Manifest"
	if signtool {
		suffix = "-Digest"
	}
	manifestVerified := false
	if want := digestsToVerify(sfMain, suffix, v.opts.MinSDK, v.opts.MaxSDK); len(want) == 0 {
		s.addWarning(NoManifestDigestInSigFile, "%s has no digest of %s", s.sfName, manifestName)
	} else {
		manifestVerified = true
		for _, d := range want {
			if got := sum(d.hash, mf); !bytes.Equal(got, d.digest) {
				s.addWarning(ZipEntryDigestDidNotVerify, "%s digest of %s does not match the one in %s: expected %s, got %s",
					d.alg, manifestName, s.sfName, b64(d.digest), b64(got))
				manifestVerified = false
			}
		}
	}
	if !signtool {
		var start, size int
		if mfMain != nil {
			start, size = mfMain.start, mfMain.size
		}
		for _, d := range digestsToVerify(sfMain, "-Digest-Manifest-Main-Attributes", v.opts.MinSDK, v.opts.MaxSDK) {
			if got := sum(d.hash, mf[start:start+size]); !bytes.Equal(got, d.digest) {
				s.addError(ManifestMainSectionDigest, "%s digest of the main section of %s does not match the one in %s: expected %s, got %s",
					d.alg, manifestName, s.sfName, b64(d.digest), b64(got))
			}
		}
	}
	if len(s.errors) > 0 {
		return
	}

	s.sfEntryNames = map[string]bool{}
	for i, sec := range r.readSections() {
		if !sec.named {
			s.addError(UnnamedSigFileSection, "malformed %s: section #%d has no name", s.sfName, i+1)
			s.ignored = true
			return
		}
		if s.sfEntryNames[sec.name] {
			s.addError(DuplicateSigFileSection, "duplicate section in %s: %q", s.sfName, sec.name)
			s.ignored = true
			return
		}
		s.sfEntryNames[sec.name] = true
		if manifestVerified {
			continue
		}
		mfSec := mfSections[sec.name]
		if mfSec == nil {
			s.addError(NoZipEntryDigestInSigFile, "no digest for %q in %s", sec.name, s.sfName)
			s.ignored = true
			continue
		}
		want := digestsToVerify(sec, "-Digest", v.opts.MinSDK, v.opts.MaxSDK)
		if len(want) == 0 {
			s.addError(NoZipEntryDigestInSigFile, "no digest for %q in %s", sec.name, s.sfName)
			continue
		}
		start, end := mfSec.start, mfSec.start+mfSec.size
		if signtool && end-start >= 2 && mf[end-1] == '\n' && mf[end-2] == '\n' {
			end--
		}
		for _, d := range want {
			if got := sum(d.hash, mf[start:end]); !bytes.Equal(got, d.digest) {
				s.addError(ManifestSectionDigest, "%s digest of the %s section %q does not match the one in %s: expected %s, got %s",
					d.alg, manifestName, sec.name, s.sfName, b64(d.digest), b64(got))
			}
		}
	}
}

// checkStripping implements the X-Android-APK-Signed check: the signature file names the APK
// Signature Schemes the APK was signed with, and each one Android knows must be present.
func (v *verifier) checkStripping(s *signer, sfMain *section) {
	ids, ok := sfMain.get("X-Android-APK-Signed")
	if !ok {
		if len(v.opts.FoundSchemeIDs) > 0 {
			s.addWarning(NoAPKSigStripProtection, "%s does not protect APK Signature Scheme signatures against stripping (no X-Android-APK-Signed)", s.sfName)
		}
		return
	}
	supported := supportedSchemes(v.opts.MaxSDK)
	if len(supported) == 0 {
		return
	}
	expected := map[int]bool{}
	for _, tok := range strings.Split(ids, ",") {
		tok = strings.TrimFunc(tok, func(r rune) bool { return r <= ' ' })
		if tok == "" {
			continue
		}
		id, err := strconv.ParseInt(tok, 10, 32)
		if err != nil {
			continue
		}
		if _, ok := supported[int(id)]; ok {
			expected[int(id)] = true
		} else {
			s.addWarning(UnknownAPKSigSchemeID, "%s names an unknown APK Signature Scheme ID %d", s.sfName, id)
		}
	}
	for _, id := range []int{2, 3} {
		if expected[id] && !v.opts.FoundSchemeIDs[id] {
			s.addError(MissingAPKSigReferenced, "%s says the APK is signed with %s, but no such signature was found: signature stripped?", s.sfName, supported[id])
		}
	}
}

// jarEntryDigestNeeded reports whether Android requires an entry to be in the manifest: every
// file outside META-INF/.
func jarEntryDigestNeeded(name string) bool {
	return !strings.HasPrefix(name, "META-INF/") && !strings.HasSuffix(name, "/")
}

// verifyEntries checks every entry that must be signed against the manifest and the signers,
// and returns the set of signers that sign them.
func (v *verifier) verifyEntries(sections map[string]*section, signers []*signer) ([]*signer, error) {
	order := make([]int, len(v.entries))
	for i := range order {
		order[i] = i
	}
	if len(v.entries) > 0 {
		if _, ok := v.entries[0].(LocalHeaderOffsetter); ok {
			sort.SliceStable(order, func(a, b int) bool {
				oa, _ := v.entries[order[a]].(LocalHeaderOffsetter)
				ob, _ := v.entries[order[b]].(LocalHeaderOffsetter)
				if oa == nil || ob == nil {
					return false
				}
				return oa.LocalHeaderOffset() < ob.LocalHeaderOffset()
			})
		}
	}
	v.hashes = newHashSet()
	var first []*signer
	var firstName string
	for _, i := range order {
		name := v.names[i]
		if !jarEntryDigestNeeded(name) {
			continue
		}
		sec := sections[name]
		if sec == nil {
			v.addError(NoZipEntryDigestInManifest, "no digest for %q in %s", name, manifestName)
			continue
		}
		var entrySigners []*signer
		for _, s := range signers {
			if s.sfEntryNames[name] {
				entrySigners = append(entrySigners, s)
			}
		}
		if len(entrySigners) == 0 {
			v.addError(ZipEntryNotSigned, "entry %q is not signed", name)
			continue
		}
		if first == nil {
			first, firstName = entrySigners, name
		} else if !sameSigners(first, entrySigners) {
			v.addError(ZipEntrySignersMismatch, "entries %q and %q are signed by different signers: <%s> vs <%s>",
				firstName, name, signerNames(first), signerNames(entrySigners))
			continue
		}
		want := digestsToVerify(sec, "-Digest", v.opts.MinSDK, v.opts.MaxSDK)
		if len(want) == 0 {
			v.addError(NoZipEntryDigestInManifest, "no digest for %q in %s", name, manifestName)
			continue
		}
		got, err := v.digestEntry(v.entries[i], name, want)
		if err != nil {
			return nil, err
		}
		for k, d := range want {
			if !bytes.Equal(got[k], d.digest) {
				v.addError(ZipEntryDigestDidNotVerify, "%s digest of %q does not match the one in %s: expected %s, got %s",
					d.alg, name, manifestName, b64(d.digest), b64(got[k]))
			}
		}
	}
	if first == nil {
		v.addError(NoSignedZipEntries, "no entries are covered by the JAR signatures")
		return nil, nil
	}
	return first, nil
}

func sameSigners(a, b []*signer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func signerNames(ss []*signer) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
