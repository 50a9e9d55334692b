package apk

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

const (
	stampCertEntry      = "stamp-cert-sha256"
	stampAttrLineage    = 0x9d6303f7
	stampAttrTime       = 0xe43c5946
	maxStampEntryLength = 1 << 10
)

// Source stamp verification statuses, as apksig names them.
const (
	StampVerified           = "STAMP_VERIFIED"
	StampVerificationFailed = "STAMP_VERIFICATION_FAILED"
	StampNotVerified        = "STAMP_NOT_VERIFIED"
	StampMissing            = "STAMP_MISSING"
)

// content digest algorithm IDs used in the stamp's signed data.
func digestAlgID(d digestAlg) uint32 {
	switch d {
	case chunkedSHA256:
		return 1
	case chunkedSHA512:
		return 2
	case verityChunkedSHA256:
		return 3
	}
	return 0
}

const digestIDSHA256 = 4 // a plain SHA-256 (of META-INF/MANIFEST.MF for v1)

// schemeDigests encodes a scheme's content digests as the stamp signs them: (algorithm ID,
// digest) pairs sorted by ID, each length-prefixed.
func encodeDigests(m map[uint32][]byte) []byte {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var b bytes.Buffer
	le := binary.LittleEndian
	for _, id := range ids {
		d := m[id]
		binary.Write(&b, le, uint32(8+len(d)))
		binary.Write(&b, le, id)
		binary.Write(&b, le, uint32(len(d)))
		b.Write(d)
	}
	return b.Bytes()
}

func claimedDigests(r *schemeResult) map[uint32][]byte {
	out := map[uint32][]byte{}
	for _, s := range r.signers {
		for _, d := range s.digests {
			if a := findSigAlg(d.algID); a != nil {
				out[digestAlgID(a.digest)] = d.value
			}
		}
	}
	return out
}

// verifySourceStamp checks the APK's source stamp, if any, as apksig's ApkVerifier does after the
// signatures verified. A stamp never changes the APK's verdict: its problems are warnings of the
// SourceStamp report.
func (v *verifier) verifySourceStamp(minSDK, maxSDK int, r31, r3, r2 *schemeResult, v1 *v1Outcome, ranV1 bool) {
	e := v.z.entry(stampCertEntry)
	stampBlock, hasBlock := []byte(nil), false
	if v.sb != nil {
		stampBlock, hasBlock = v.sb.pairs[BlockStampV2]
	}
	if e == nil {
		if hasBlock {
			v.res.SourceStamp = &SourceStamp{Status: StampNotVerified}
			v.res.SourceStamp.warn("SOURCE_STAMP_SIGNATURE_BLOCK_WITHOUT_CERT_DIGEST", "the APK has a source stamp block but no %s entry", stampCertEntry)
		}
		return
	}
	st := &SourceStamp{}
	v.res.SourceStamp = st
	certDigest, err := e.readAll(maxStampEntryLength)
	if err != nil {
		st.Status = StampVerificationFailed
		st.warn("SOURCE_STAMP_MALFORMED_CERTIFICATE", "reading %s: %v", stampCertEntry, err)
		return
	}
	if !hasBlock {
		st.Status = StampNotVerified
		st.warn("SOURCE_STAMP_SIG_MISSING", "the APK has a %s entry but no source stamp signature block", stampCertEntry)
		return
	}
	schemes := map[uint32][]byte{}
	if r3 != nil {
		schemes[schemeV3] = encodeDigests(claimedDigests(r3))
	}
	if r2 != nil {
		schemes[schemeV2] = encodeDigests(claimedDigests(r2))
	}
	if ranV1 {
		m := map[uint32][]byte{}
		if mf := v.z.entry("META-INF/MANIFEST.MF"); mf != nil {
			data, err := mf.readAll(maxManifestBytes)
			if err != nil {
				st.Status = StampVerificationFailed
				st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "reading META-INF/MANIFEST.MF: %v", err)
				return
			}
			d := sha256.Sum256(data)
			m[digestIDSHA256] = d[:]
		}
		schemes[schemeV1] = encodeDigests(m)
	}
	verifyStampBlock(st, stampBlock, certDigest, schemes, max(minSDK, sdkR), maxSDK)
	if len(st.Warnings) == 0 && len(st.Errors) == 0 {
		st.Status, st.Verified = StampVerified, true
	} else if st.Status == "" {
		st.Status = StampVerificationFailed
	}
}

func (s *SourceStamp) warn(code, format string, args ...any) {
	s.Warnings = append(s.Warnings, Issue{Code: code, Message: fmt.Sprintf(format, args...)})
}

// verifyStampBlock verifies a v2 source stamp block:
//
//	length-prefixed stamp data:
//	  length-prefixed stamp certificate
//	  length-prefixed signed scheme digests: repeated length-prefixed (int32 scheme, length-prefixed signatures)
//	  optional: length-prefixed attributes, length-prefixed signatures over them
func verifyStampBlock(st *SourceStamp, block, certDigest []byte, schemes map[uint32][]byte, minSDK, maxSDK int) {
	outer := &lp{b: block}
	p := outer.slice()
	if outer.err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp block: %v", outer.err)
		return
	}
	der := p.bytes()
	if p.err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp block: %v", p.err)
		return
	}
	cert, err := parseCertificate(der)
	if err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_CERTIFICATE", "malformed source stamp certificate: %v", err)
		return
	}
	st.SHA256, st.Subject = cert.sha256Hex(), cert.Subject
	sum := sha256.Sum256(der)
	if !bytes.Equal(sum[:], certDigest) {
		st.warn("SOURCE_STAMP_CERTIFICATE_MISMATCH_BETWEEN_SIGNATURE_BLOCK_AND_APK", "the stamp certificate in the signing block (%x) is not the one %s names (%x)", sum, stampCertEntry, certDigest)
		return
	}
	signed := p.slice()
	if p.err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp block: %v", p.err)
		return
	}
	bySheme := map[uint32][]byte{}
	for signed.remaining() > 0 {
		one := signed.slice()
		id := one.u32()
		sigs := one.bytes()
		if signed.err != nil || one.err != nil {
			st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed signed scheme digests in the source stamp")
			return
		}
		bySheme[id] = sigs
	}
	ids := make([]uint32, 0, len(schemes))
	for id := range schemes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		sigs, ok := bySheme[id]
		if !ok {
			st.warn("SOURCE_STAMP_NO_SIGNATURE", "the source stamp does not sign the %s digests", schemeName(int(id)))
			return
		}
		if !verifyStampSignatures(st, cert, schemes[id], sigs, minSDK, maxSDK) {
			return
		}
	}
	if p.remaining() == 0 {
		return
	}
	attrData := p.bytes()
	attrSigs := p.bytes()
	if p.err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp attributes: %v", p.err)
		return
	}
	if !verifyStampSignatures(st, cert, attrData, attrSigs, minSDK, maxSDK) {
		return
	}
	ad := &lp{b: attrData}
	attrs := ad.slice()
	if ad.err != nil {
		st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp attributes: %v", ad.err)
		return
	}
	for n := 1; attrs.remaining() > 0; n++ {
		a := attrs.slice()
		id := a.u32()
		if attrs.err != nil || a.err != nil {
			st.warn("SOURCE_STAMP_MALFORMED_ATTRIBUTE", "malformed source stamp attribute #%d", n)
			return
		}
		switch id {
		case stampAttrLineage:
			l, err := parseLineage(a.b)
			switch {
			case err == nil:
				st.Lineage = lineageNodes(l)
				if len(l.nodes) == 0 || !bytes.Equal(l.nodes[len(l.nodes)-1].cert.Raw, cert.Raw) {
					st.warn("SOURCE_STAMP_POR_CERT_MISMATCH", "the stamp certificate is not the last of its lineage")
				}
			case errors.Is(err, errLineageNotVerified):
				st.warn("SOURCE_STAMP_POR_DID_NOT_VERIFY", "source stamp lineage did not verify: %v", err)
			case errors.Is(err, errLineageCertMissing):
				st.warn("SOURCE_STAMP_POR_CERT_MISMATCH", "%v", err)
			default:
				st.warn("SOURCE_STAMP_MALFORMED_LINEAGE", "malformed source stamp lineage: %v", err)
			}
		case stampAttrTime:
			if len(a.b) < 8 {
				st.warn("SOURCE_STAMP_MALFORMED_ATTRIBUTE", "malformed source stamp attribute #%d", n)
				return
			}
			ts := int64(binary.LittleEndian.Uint64(a.b))
			if ts > 0 {
				st.Timestamp = ts
			} else {
				st.warn("SOURCE_STAMP_INVALID_TIMESTAMP", "invalid source stamp timestamp %d", ts)
			}
		}
	}
}

// verifyStampSignatures checks the stamp certificate's signatures over data; false after a warning.
func verifyStampSignatures(st *SourceStamp, cert *certInfo, data, sigsBlock []byte, minSDK, maxSDK int) bool {
	sigs := &lp{b: sigsBlock}
	var supported []supportedSig
	for n := 1; sigs.remaining() > 0; n++ {
		one := sigs.slice()
		id := one.u32()
		sig := one.bytes()
		if sigs.err != nil || one.err != nil {
			st.warn("SOURCE_STAMP_MALFORMED_SIGNATURE", "malformed source stamp signature #%d", n)
			return false
		}
		if alg := findSigAlg(id); alg != nil {
			supported = append(supported, supportedSig{alg: alg, sig: sig})
		}
	}
	if len(supported) == 0 {
		st.warn("SOURCE_STAMP_NO_SIGNATURE", "the source stamp has no signature in a known algorithm")
		return false
	}
	toVerify, err := signaturesToVerify(supported, minSDK, maxSDK, true)
	if err != nil {
		st.warn("SOURCE_STAMP_NO_SUPPORTED_SIGNATURE", "%v", err)
		return false
	}
	for _, s := range toVerify {
		ok, err := verifySignature(s.alg, cert.PublicKey, data, s.sig)
		if err != nil {
			st.warn("SOURCE_STAMP_VERIFY_EXCEPTION", "verifying the source stamp's %s signature: %v", s.alg.name, err)
			return false
		}
		if !ok {
			st.warn("SOURCE_STAMP_DID_NOT_VERIFY", "the source stamp's %s signature did not verify", s.alg.name)
			return false
		}
	}
	return true
}
