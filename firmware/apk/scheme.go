package apk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Scheme numbers as apksig counts them.
const (
	schemeV1  = 1
	schemeV2  = 2
	schemeV3  = 3
	schemeV31 = 31
	schemeV4  = 4
)

// Additional attribute IDs of signed data.
const (
	attrStrippingProtection = 0xbeeff00d // v2: "this APK was also signed with scheme N"
	attrProofOfRotation     = 0x3ba06f8c
	attrRotationMinSDK      = 0x559f8b02
	attrTargetsDevRelease   = 0xc2a6b3ba
	attrHybridMinSDK        = 0xbf940529
	attrHybridMaxSDK        = 0x9f06b79c
)

const maxAPKSigners = 10 // apksig's limit on v1 and v2 signers

type contentDigest struct {
	algID uint32
	value []byte
}

type attribute struct {
	id    uint32
	value []byte
}

// schemeSigner is one signer of a v2, v3 or v3.1 block.
type schemeSigner struct {
	index          int
	certs          []*certInfo
	minSDK, maxSDK int // v3/v3.1 only
	digests        []contentDigest
	sigIDs         []uint32
	attrs          []attribute
	lineage        *lineage
	verified       map[digestAlg][]byte // content digests that matched the APK
	errors         []Issue
	warnings       []Issue
}

func (s *schemeSigner) addError(code, format string, args ...any) {
	s.errors = append(s.errors, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}
func (s *schemeSigner) addWarning(code, format string, args ...any) {
	s.warnings = append(s.warnings, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (s *schemeSigner) targetsDevRelease() bool {
	for _, a := range s.attrs {
		if a.id == attrTargetsDevRelease {
			return true
		}
	}
	return false
}

// schemeResult is the outcome of one v2, v3 or v3.1 block.
type schemeResult struct {
	scheme   int
	signers  []*schemeSigner
	errors   []Issue
	warnings []Issue
	verified bool
	digests  map[digestAlg]bool // content digests whose signatures verified: to compute and compare
	lineage  *lineage           // v3/v3.1: consolidated lineage of the signers
}

func (r *schemeResult) addError(code, format string, args ...any) {
	r.errors = append(r.errors, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r *schemeResult) containsErrors() bool {
	if len(r.errors) > 0 {
		return true
	}
	for _, s := range r.signers {
		if len(s.errors) > 0 {
			return true
		}
	}
	return false
}

func (r *schemeResult) prefix() string {
	if r.scheme == schemeV2 {
		return "V2_SIG_"
	}
	return "V3_SIG_"
}

func schemeName(s int) string {
	switch s {
	case schemeV1:
		return "JAR signing (v1)"
	case schemeV2:
		return "APK Signature Scheme v2"
	case schemeV3:
		return "APK Signature Scheme v3"
	case schemeV31:
		return "APK Signature Scheme v3.1"
	case schemeV4:
		return "APK Signature Scheme v4"
	}
	return fmt.Sprintf("scheme %d", s)
}

// v3Params are what the caller knows when a v3 or v3.1 block is parsed.
type v3Params struct {
	minSDK, maxSDK int  // platform range the block must serve
	rotationMinSDK int  // v3 only: the lowest min SDK of the v3.1 signers, 0 when there is no v3.1 block
	full           bool // check the rotation and hybrid stripping-protection attributes
}

// parseSchemeBlock parses a v2, v3 or v3.1 block and verifies each signer's signature over its
// signed data. It does not look at the APK contents: r.digests lists the content digests to compute.
// supported and found are the scheme IDs used by v2's stripping-protection attribute.
func parseSchemeBlock(scheme int, block []byte, minSDK, maxSDK int, v3 v3Params, supported, found map[int]bool) *schemeResult {
	r := &schemeResult{scheme: scheme, digests: map[digestAlg]bool{}}
	pre := r.prefix()
	p := &lp{b: block}
	signers := p.slice()
	if signers.err != nil {
		r.addError(pre+"MALFORMED_SIGNERS", "malformed list of signers in the %s block: %v", schemeName(scheme), signers.err)
		return r
	}
	if signers.remaining() == 0 {
		r.addError(pre+"NO_SIGNERS", "no signers in the %s block", schemeName(scheme))
		return r
	}
	count := 0
	for signers.remaining() > 0 {
		s := &schemeSigner{index: count}
		count++
		r.signers = append(r.signers, s)
		one := signers.slice()
		if signers.err != nil {
			s.addError(pre+"MALFORMED_SIGNER", "malformed signer block #%d: %v", s.index+1, signers.err)
			return r
		}
		if err := parseSigner(r, s, one, minSDK, maxSDK, v3, supported, found); err != nil {
			s.addError(pre+"MALFORMED_SIGNER", "malformed signer block #%d: %v", s.index+1, err)
			return r
		}
	}
	if scheme == schemeV2 && count > maxAPKSigners {
		r.addError("V2_SIG_MAX_SIGNATURES_EXCEEDED", "the APK has %d v2 signers, more than the %d Android allows", count, maxAPKSigners)
	}
	return r
}

// parseSigner fills s. A returned error is a malformed signer block (apksig's MALFORMED_SIGNER);
// other problems are recorded on s.
func parseSigner(r *schemeResult, s *schemeSigner, p *lp, minSDK, maxSDK int, v3 v3Params, supported, found map[int]bool) error {
	pre := r.prefix()
	isV3 := r.scheme != schemeV2
	signedData := p.bytes()
	var parsedMin, parsedMax int32
	if isV3 {
		parsedMin, parsedMax = p.i32(), p.i32()
		if p.err != nil {
			return p.err
		}
		s.minSDK, s.maxSDK = int(parsedMin), int(parsedMax)
		if parsedMin < 0 || parsedMin > parsedMax {
			s.addError("V3_SIG_INVALID_SDK_VERSIONS", "invalid SDK versions in signer #%d: min %d, max %d", s.index+1, parsedMin, parsedMax)
		}
	}
	sigs := p.slice()
	pubKeyBytes := p.bytes()
	if p.err != nil {
		return p.err
	}
	var supportedSigs []supportedSig
	for n := 1; sigs.remaining() > 0; n++ {
		one := sigs.slice()
		id := one.u32()
		sig := one.bytes()
		if sigs.err != nil || one.err != nil {
			s.addError(pre+"MALFORMED_SIGNATURE", "malformed signature #%d of signer #%d", n, s.index+1)
			return nil
		}
		s.sigIDs = append(s.sigIDs, id)
		alg := findSigAlg(id)
		if alg == nil {
			s.addWarning(pre+"UNKNOWN_SIG_ALGORITHM", "unknown signature algorithm 0x%08x in signer #%d", id, s.index+1)
			continue
		}
		supportedSigs = append(supportedSigs, supportedSig{alg: alg, sig: sig})
	}
	if len(s.sigIDs) == 0 {
		s.addError(pre+"NO_SIGNATURES", "signer #%d has no signatures", s.index+1)
		return nil
	}
	effMin, effMax := minSDK, maxSDK
	if isV3 {
		effMin, effMax = int(parsedMin), int(parsedMax)
		if signedDataTargetsDevRelease(signedData) {
			effMin++
		}
	}
	toVerify, err := signaturesToVerify(supportedSigs, effMin, effMax, false)
	if err != nil {
		s.addError(pre+"NO_SUPPORTED_SIGNATURES", "signer #%d has no signature the platforms in range support: %v", s.index+1, err)
		return nil
	}
	for _, sv := range toVerify {
		pub, err := parsePublicKey(pubKeyBytes)
		if err == nil && keyAlgOf(pub) != sv.alg.key {
			err = fmt.Errorf("%w: %s key for %s", errKeyMismatch, keyAlgOf(pub), sv.alg.name)
		}
		if err != nil {
			s.addError(pre+"MALFORMED_PUBLIC_KEY", "malformed public key of signer #%d: %v", s.index+1, err)
			return nil
		}
		ok, err := verifySignature(sv.alg, pub, signedData, sv.sig)
		if err != nil {
			s.addError(pre+"VERIFY_EXCEPTION", "failed to verify %s signature of signer #%d: %v", sv.alg.name, s.index+1, err)
			return nil
		}
		if !ok {
			s.addError(pre+"DID_NOT_VERIFY", "%s signature of signer #%d did not verify", sv.alg.name, s.index+1)
			return nil
		}
		r.digests[sv.alg.digest] = true
	}

	sd := &lp{b: signedData}
	digests := sd.slice()
	certs := sd.slice()
	if isV3 {
		signedMin, signedMax := sd.i32(), sd.i32()
		if sd.err == nil && signedMin != parsedMin {
			s.addError("V3_MIN_SDK_VERSION_MISMATCH_BETWEEN_SIGNER_AND_SIGNED_DATA_RECORD", "signer #%d: min SDK %d outside signed data, %d inside", s.index+1, parsedMin, signedMin)
		}
		if sd.err == nil && signedMax != parsedMax {
			s.addError("V3_MAX_SDK_VERSION_MISMATCH_BETWEEN_SIGNER_AND_SIGNED_DATA_RECORD", "signer #%d: max SDK %d outside signed data, %d inside", s.index+1, parsedMax, signedMax)
		}
	}
	attrs := sd.slice()
	if sd.err != nil {
		return sd.err
	}
	for i := 0; certs.remaining() > 0; i++ {
		der := certs.bytes()
		if certs.err != nil {
			return certs.err
		}
		c, err := parseCertificate(der)
		if err != nil {
			s.addError(pre+"MALFORMED_CERTIFICATE", "malformed certificate #%d of signer #%d: %v", i+1, s.index+1, err)
			return nil
		}
		s.certs = append(s.certs, c)
	}
	if len(s.certs) == 0 {
		s.addError(pre+"NO_CERTIFICATES", "signer #%d has no certificates", s.index+1)
		return nil
	}
	if !samePublicKey(pubKeyBytes, s.certs[0]) {
		s.addError(pre+"PUBLIC_KEY_MISMATCH_BETWEEN_CERTIFICATE_AND_SIGNATURES_RECORD", "signer #%d: the public key of its certificate differs from the one its signatures record names", s.index+1)
		return nil
	}
	for n := 1; digests.remaining() > 0; n++ {
		one := digests.slice()
		id := one.u32()
		val := one.bytes()
		if digests.err != nil || one.err != nil {
			s.addError(pre+"MALFORMED_DIGEST", "malformed digest #%d of signer #%d", n, s.index+1)
			return nil
		}
		s.digests = append(s.digests, contentDigest{algID: id, value: val})
	}
	same := len(s.digests) == len(s.sigIDs)
	for i := 0; same && i < len(s.digests); i++ {
		same = s.digests[i].algID == s.sigIDs[i]
	}
	if !same {
		s.addError(pre+"SIG_ALG_MISMATCH_BETWEEN_SIGNATURES_AND_DIGESTS_RECORDS", "signer #%d: the algorithms of its signatures and of its digests differ", s.index+1)
		return nil
	}

	rotationAttrFound := false
	expected := map[int]bool{}
	for n := 1; attrs.remaining() > 0; n++ {
		one := attrs.slice()
		id := one.u32()
		if attrs.err != nil || one.err != nil {
			s.addError(pre+"MALFORMED_ADDITIONAL_ATTRIBUTE", "malformed additional attribute #%d of signer #%d", n, s.index+1)
			return nil
		}
		val := one.b
		s.attrs = append(s.attrs, attribute{id: id, value: val})
		if !isV3 {
			if id != attrStrippingProtection {
				s.addWarning("V2_SIG_UNKNOWN_ADDITIONAL_ATTRIBUTE", "unknown additional attribute 0x%08x in signer #%d", id, s.index+1)
				continue
			}
			if len(val) < 4 {
				s.addError(pre+"MALFORMED_ADDITIONAL_ATTRIBUTE", "malformed additional attribute #%d of signer #%d", n, s.index+1)
				return nil
			}
			fid := int(int32(binary.LittleEndian.Uint32(val)))
			if supported[fid] {
				expected[fid] = true
			} else {
				s.addWarning("V2_SIG_UNKNOWN_APK_SIG_SCHEME_ID", "signer #%d references unknown APK signature scheme ID %d", s.index+1, fid)
			}
			continue
		}
		switch id {
		case attrProofOfRotation:
			l, err := parseLineage(val)
			switch {
			case err == nil:
				s.lineage = l
				if i := l.index(s.certs[0].Raw); i < 0 || i != len(l.nodes)-1 {
					s.addError("V3_SIG_POR_CERT_MISMATCH", "signer #%d: its certificate is not the last one of its proof-of-rotation lineage", s.index+1)
				}
			case errors.Is(err, errLineageNotVerified):
				s.addError("V3_SIG_POR_DID_NOT_VERIFY", "signer #%d: proof-of-rotation lineage did not verify: %v", s.index+1, err)
			case errors.Is(err, errLineageCertMissing):
				s.addError("V3_SIG_POR_CERT_MISMATCH", "signer #%d: %v", s.index+1, err)
			default:
				s.addError("V3_SIG_MALFORMED_LINEAGE", "signer #%d: malformed proof-of-rotation lineage: %v", s.index+1, err)
			}
		case attrRotationMinSDK:
			rotationAttrFound = true
			if v3.maxSDK >= sdkT && v3.full {
				if len(val) < 4 {
					s.addError(pre+"MALFORMED_ADDITIONAL_ATTRIBUTE", "malformed additional attribute #%d of signer #%d", n, s.index+1)
					return nil
				}
				attrMin := int(int32(binary.LittleEndian.Uint32(val)))
				if v3.rotationMinSDK > 0 {
					if attrMin != v3.rotationMinSDK {
						s.addError("V31_ROTATION_MIN_SDK_MISMATCH", "the v3 signer says rotation starts at SDK %d but the v3.1 signers start at %d", attrMin, v3.rotationMinSDK)
					}
				} else {
					s.addError("V31_BLOCK_MISSING", "the v3 signer says rotation starts at SDK %d but there is no v3.1 block (stripped?)", attrMin)
				}
			}
		case attrHybridMinSDK:
			// A v3.2 (hybrid) block is not verified by provkit: a signer pointing at one cannot be
			// checked against it, as apksig reports when the block is missing.
			if len(val) >= 4 {
				s.addError("V32_BLOCK_MISSING", "signer #%d refers to a v3.2 hybrid block targeting SDK %d, which provkit does not verify", s.index+1, int32(binary.LittleEndian.Uint32(val)))
			} else {
				s.addError(pre+"MALFORMED_ADDITIONAL_ATTRIBUTE", "malformed additional attribute #%d of signer #%d", n, s.index+1)
			}
			return nil
		case attrHybridMaxSDK:
		case attrTargetsDevRelease:
			if r.scheme == schemeV3 {
				s.addWarning("V31_ROTATION_TARGETS_DEV_RELEASE_ATTR_ON_V3_SIGNER", "the v3.0 signer #%d carries the dev-release attribute meant for v3.1 signers", s.index+1)
			}
		default:
			s.addWarning("V3_SIG_UNKNOWN_ADDITIONAL_ATTRIBUTE", "unknown additional attribute 0x%08x in signer #%d", id, s.index+1)
		}
	}
	if !isV3 {
		for id := range expected {
			if !found[id] {
				s.addError("V2_SIG_MISSING_APK_SIG_REFERENCED", "v2 signer #%d says the APK is also signed with %s, which is missing (stripped?)", s.index+1, schemeName(id))
			}
		}
	}
	if isV3 && v3.full && v3.rotationMinSDK > 0 && !rotationAttrFound {
		s.addWarning("V31_ROTATION_MIN_SDK_ATTR_MISSING", "the v3 signer lacks the rotation-min-sdk-version attribute for the v3.1 block starting at SDK %d", v3.rotationMinSDK)
	}
	return nil
}

// signedDataTargetsDevRelease peeks at the attributes of a v3 signed data for the dev-release flag,
// ignoring any malformation (the full parse reports it).
func signedDataTargetsDevRelease(signed []byte) bool {
	p := &lp{b: signed}
	p.bytes()
	p.bytes()
	p.u32()
	p.u32()
	attrs := p.slice()
	for attrs.err == nil && attrs.remaining() > 0 {
		a := attrs.slice()
		if a.u32() == attrTargetsDevRelease && a.err == nil {
			return true
		}
	}
	return false
}

// finishV3 runs apksig's checks across v3/v3.1 signers once their content digests are known: the
// signers' SDK ranges must cover [minSDK, maxSDK] (or up to the rotation SDK for v3 when a v3.1
// block exists) without holes or overlap, and lineages may only grow with the SDK.
func finishV3(r *schemeResult, minSDK, maxSDK, rotationMinSDK int) {
	sorted := make([]*schemeSigner, 0, len(r.signers))
	bymax := map[int]*schemeSigner{}
	for _, s := range r.signers {
		bymax[s.maxSDK] = s // apksig keys a TreeMap by maxSdk: a later signer with the same max wins
	}
	for _, s := range bymax {
		sorted = append(sorted, s)
	}
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].maxSDK < sorted[j-1].maxSDK; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	firstMin, lastMax, lastLineage := 0, 0, 0
	var lineages []*lineage
	for _, s := range sorted {
		if firstMin == 0 {
			firstMin = s.minSDK
		} else if s.minSDK != lastMax+1 && !(s.minSDK == lastMax && s.targetsDevRelease()) {
			r.addError("V3_INCONSISTENT_SDK_VERSIONS", "v3 signers' SDK ranges have a hole or overlap at SDK %d", s.minSDK)
			break
		}
		lastMax = s.maxSDK
		if s.lineage != nil {
			if len(s.lineage.nodes) < lastLineage {
				r.addError("V3_INCONSISTENT_LINEAGES", "a v3 signer for newer platforms has a shorter lineage than one for older platforms")
				break
			}
			lastLineage = len(s.lineage.nodes)
			lineages = append(lineages, s.lineage)
		}
	}
	want := maxSDK
	if rotationMinSDK > 0 {
		want = rotationMinSDK - 1
	}
	if firstMin > minSDK || lastMax < want {
		r.addError("V3_MISSING_SDK_VERSIONS", "v3 signers cover SDK %d to %d, not all of %d to %d", firstMin, lastMax, minSDK, want)
	}
	if len(lineages) > 0 {
		l, err := consolidateLineages(lineages)
		if err != nil {
			r.addError("V3_INCONSISTENT_LINEAGES", "%v", err)
		} else {
			r.lineage = l
		}
	}
}
