package apk

import (
	"bytes"
	"errors"
	"fmt"
)

// Capability flags of a lineage node: what an older signing key may still do after rotation.
const (
	CapInstalledData = 1  // apps signed by it keep their data
	CapSharedUID     = 2  // may share a user ID with the app
	CapPermission    = 4  // permissions it granted stay granted
	CapRollback      = 8  // an APK signed by it may replace this one
	CapAuth          = 16 // may be used in signature-based authorization
)

// lineageNode is one certificate of a proof-of-rotation lineage, oldest first.
type lineageNode struct {
	cert        *certInfo
	flags       uint32
	parentSigID uint32 // algorithm the previous key used to sign this node (0 for the first)
	sigID       uint32 // algorithm this key uses to sign the next node
}

type lineage struct{ nodes []lineageNode }

// Lineage errors, mapped to apksig's issues by the caller.
var (
	errLineageMalformed   = errors.New("malformed lineage")                // V3_SIG_MALFORMED_LINEAGE
	errLineageNotVerified = errors.New("lineage signature did not verify") // V3_SIG_POR_DID_NOT_VERIFY
	errLineageCertMissing = errors.New("certificate not in lineage")       // V3_SIG_POR_CERT_MISMATCH
)

// parseLineage decodes and verifies a v3 proof-of-rotation attribute value:
//
//	uint32 version (1)
//	repeated length-prefixed node:
//	  length-prefixed signed data: length-prefixed certificate, uint32 parent signature algorithm
//	  uint32 flags
//	  uint32 signature algorithm (used by this key to sign the next node)
//	  length-prefixed signature over the signed data by the previous node's key
func parseLineage(value []byte) (*lineage, error) {
	if len(value) == 0 {
		return nil, fmt.Errorf("%w: empty attribute", errLineageMalformed)
	}
	p := &lp{b: value}
	if v := p.u32(); p.err != nil || v != 1 {
		if p.err != nil {
			return nil, fmt.Errorf("%w: %v", errLineageMalformed, p.err)
		}
		return nil, fmt.Errorf("%w: unknown lineage version %d", errLineageCertMissing, v)
	}
	l := &lineage{}
	var last *certInfo
	var lastSigID uint32
	for n := 1; p.remaining() > 0; n++ {
		node := p.slice()
		signed := node.bytes()
		flags := node.u32()
		sigID := node.u32()
		sig := node.bytes()
		if node.err != nil {
			return nil, fmt.Errorf("%w: node #%d: %v", errLineageMalformed, n, node.err)
		}
		if last != nil {
			alg := findSigAlg(lastSigID)
			if alg == nil {
				return nil, fmt.Errorf("%w: node #%d is signed with unknown algorithm 0x%04x", errLineageMalformed, n, lastSigID)
			}
			ok, err := verifySignature(alg, last.PublicKey, signed, sig)
			if err != nil {
				return nil, fmt.Errorf("%w: node #%d: %v", errLineageNotVerified, n, err)
			}
			if !ok {
				return nil, fmt.Errorf("%w: node #%d is not signed by the key of node #%d", errLineageNotVerified, n, n-1)
			}
		}
		sd := &lp{b: signed}
		certBytes := sd.bytes()
		parentSigID := sd.u32()
		if sd.err != nil {
			return nil, fmt.Errorf("%w: node #%d signed data: %v", errLineageMalformed, n, sd.err)
		}
		if last != nil && parentSigID != lastSigID {
			return nil, fmt.Errorf("%w: node #%d signed algorithm 0x%04x differs from the parent's 0x%04x", errLineageNotVerified, n, parentSigID, lastSigID)
		}
		c, err := parseCertificate(certBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: node #%d: %v", errLineageNotVerified, n, err)
		}
		for _, prev := range l.nodes {
			if bytes.Equal(prev.cert.Raw, c.Raw) {
				return nil, fmt.Errorf("%w: node #%d repeats an earlier certificate", errLineageNotVerified, n)
			}
		}
		l.nodes = append(l.nodes, lineageNode{cert: c, flags: flags, parentSigID: parentSigID, sigID: sigID})
		last, lastSigID = c, sigID
	}
	if p.err != nil {
		return nil, fmt.Errorf("%w: %v", errLineageMalformed, p.err)
	}
	return l, nil
}

// index returns the position of the certificate in the lineage, or -1.
func (l *lineage) index(raw []byte) int {
	for i, n := range l.nodes {
		if bytes.Equal(n.cert.Raw, raw) {
			return i
		}
	}
	return -1
}

// consolidateLineages checks that the lineages of a scheme's signers are prefixes of one another and
// returns the longest.
func consolidateLineages(ls []*lineage) (*lineage, error) {
	var longest *lineage
	for _, l := range ls {
		if longest == nil || len(l.nodes) > len(longest.nodes) {
			longest = l
		}
	}
	for _, l := range ls {
		for i, n := range l.nodes {
			if !bytes.Equal(n.cert.Raw, longest.nodes[i].cert.Raw) {
				return nil, errors.New("inconsistent lineages: not all lineages are subsets of each other")
			}
		}
	}
	return longest, nil
}
