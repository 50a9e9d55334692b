package evidence

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"os"
	"strings"
	"time"

	"github.com/provkit/provkit/internal/atomicfile"
	"github.com/provkit/provkit/internal/buildinfo"
	"github.com/provkit/provkit/manifests/policy"
)

// Statement and predicate identifiers.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://provkit.dev/attestation/compliance/v1"
)

// Kinds of judgement, the predicate's "kind".
const (
	KindAPKVerify   = "apk-verify"
	KindImageAudit  = "image-audit"
	KindDeviceCheck = "device-check"
	KindPatchCheck  = "patch-check"
	KindFlash       = "flash"
)

// Verdicts.
const (
	VerdictCompliant    = "compliant"
	VerdictNotCompliant = "not-compliant"
	VerdictError        = "error" // some subject could not be judged (a device offline)
)

// Statement is an in-toto Statement v1 with provkit's compliance predicate.
type Statement struct {
	Type          string      `json:"_type"`
	Subject       []Subject   `json:"subject"`
	PredicateType string      `json:"predicateType"`
	Predicate     *Compliance `json:"predicate"`
}

// Subject is an in-toto ResourceDescriptor: what was judged.
type Subject struct {
	Name        string            `json:"name"`
	Digest      map[string]string `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Compliance is the predicate: the verdict and its evidence.
type Compliance struct {
	Kind    string    `json:"kind"`
	Verdict string    `json:"verdict"`
	Policy  PolicyRef `json:"policy"`
	// Rules are every rule judged, per subject, in the order the command judged them.
	Rules []RuleResult `json:"rules"`
	Tool  Tool         `json:"tool"`
	Time  time.Time    `json:"time"`
	Host  string       `json:"host"`
	// Result is the command's own JSON document (as --json prints it): the full evidence.
	Result json.RawMessage `json:"result,omitempty"`
}

// PolicyRef identifies the policy judged against.
type PolicyRef struct {
	Name      string `json:"name"`
	Authority string `json:"authority,omitempty"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
}

// RuleResult is one rule's result for one subject.
type RuleResult struct {
	Subject string `json:"subject"`
	Rule    string `json:"rule"`
	Pass    bool   `json:"pass"`
	Detail  string `json:"detail"`
}

// Tool says which provkit judged.
type Tool struct {
	Name string `json:"name"`
	buildinfo.Info
}

// Rules turns policy checks about subject into rule results.
func Rules(subject string, checks []policy.Check) []RuleResult {
	out := make([]RuleResult, 0, len(checks))
	for _, c := range checks {
		out = append(out, RuleResult{Subject: subject, Rule: c.Rule, Pass: c.Pass, Detail: c.Detail})
	}
	return out
}

// FileSubject hashes the file at path into a subject named by its base path as given.
func FileSubject(path string) (Subject, error) {
	sum, err := FileSHA256(path)
	if err != nil {
		return Subject{}, err
	}
	return Subject{Name: path, Digest: map[string]string{"sha256": sum}}, nil
}

// FileSHA256 returns the lowercase hex SHA-256 of a regular file's bytes.
func FileSHA256(path string) (string, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("hashing %s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DeviceSubject names a device by serial, with its build fingerprint and model as annotations;
// the digest is the SHA-256 of the canonical record "serial\x00fingerprint\x00model" so the
// subject can be matched without trusting the annotations.
func DeviceSubject(serial, fingerprint, model string) Subject {
	sum := sha256.Sum256([]byte(serial + "\x00" + fingerprint + "\x00" + model))
	ann := map[string]string{"serial": serial}
	if fingerprint != "" {
		ann["fingerprint"] = fingerprint
	}
	if model != "" {
		ann["model"] = model
	}
	return Subject{Name: "device:" + serial, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}, Annotations: ann}
}

// NewCompliance fills the predicate's policy, tool, time and host fields; the caller sets kind,
// verdict, rules and result.
func NewCompliance(kind string, pol *policy.Policy) (*Compliance, error) {
	c := &Compliance{Kind: kind, Tool: Tool{Name: "provkit", Info: buildinfo.Get()}, Time: time.Now().UTC().Truncate(time.Second)}
	c.Host, _ = os.Hostname()
	if pol != nil {
		c.Policy = PolicyRef{Name: pol.Metadata.Name, Authority: pol.Metadata.Authority, Path: pol.Source}
		if pol.Source == "" {
			return nil, errors.New("attesting: the policy was not loaded from a file, so it has no digest to attest")
		}
		sum, err := FileSHA256(pol.Source)
		if err != nil {
			return nil, fmt.Errorf("attesting: %w", err)
		}
		c.Policy.SHA256 = sum
	}
	return c, nil
}

// Sign wraps the statement in a DSSE envelope signed with key.
func Sign(st *Statement, key ed25519.PrivateKey) (*Envelope, error) {
	if st.Type == "" {
		st.Type = StatementType
	}
	if st.PredicateType == "" {
		st.PredicateType = PredicateType
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("attesting: no subject (nothing was judged)")
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding statement: %w", err)
	}
	return SignEnvelope(PayloadType, payload, key)
}

// WriteEnvelope writes env to path atomically (a reader never sees half an envelope).
func WriteEnvelope(path string, env *Envelope) error {
	data, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := f.Write(append(data, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("writing attestation %s: %w", path, err)
	}
	return nil
}

// maxEnvelope bounds an envelope read from disk.
const maxEnvelope = 64 << 20

// ReadFile reads an envelope file.
func ReadFile(path string) (*Envelope, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading attestation: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading attestation %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvelope+1))
	if err != nil {
		return nil, fmt.Errorf("reading attestation %s: %w", path, err)
	}
	if len(data) > maxEnvelope {
		return nil, fmt.Errorf("reading attestation %s: larger than %d MiB", path, maxEnvelope>>20)
	}
	env, err := DecodeEnvelope(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

// DecodeStatement returns the statement of an envelope (unverified: call Verify first when it
// matters).
func DecodeStatement(env *Envelope) (*Statement, error) {
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("payloadType %q is not an in-toto statement (%s)", env.PayloadType, PayloadType)
	}
	payload, err := env.PayloadBytes()
	if err != nil {
		return nil, err
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("reading statement: %w", err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement _type %q, want %s", st.Type, StatementType)
	}
	if st.PredicateType != PredicateType || st.Predicate == nil {
		return nil, fmt.Errorf("predicateType %q, want %s", st.PredicateType, PredicateType)
	}
	return &st, nil
}

// Check is the result of verifying an attestation.
type Check struct {
	KeyID     string     `json:"keyId"`
	Statement *Statement `json:"statement"`
	// Files are the files the caller asked about, each matched to a subject.
	Files []FileMatch `json:"files,omitempty"`
}

// FileMatch is a file whose digest was looked up among the subjects.
type FileMatch struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Subject string `json:"subject,omitempty"`
}

// ErrNotAttested says a file, or the policy, is not what the attestation is about.
var ErrNotAttested = errors.New("not attested")

// VerifyOptions say what else to check beyond the signature.
type VerifyOptions struct {
	Files      []string // each must be a subject (by SHA-256)
	PolicyPath string   // must be the attested policy (by SHA-256)
}

// Verify checks env's signature with pub, decodes its statement, and checks that every file of
// opts is a subject and the policy is the one attested. Any failure is returned as an error that
// wraps ErrBadSignature or ErrNotAttested; other errors mean the envelope is malformed.
func Verify(env *Envelope, pub ed25519.PublicKey, opts VerifyOptions) (*Check, error) {
	id, err := env.Verify(pub)
	if err != nil {
		return nil, err
	}
	st, err := DecodeStatement(env)
	if err != nil {
		return nil, err
	}
	c := &Check{KeyID: id, Statement: st}
	for _, p := range opts.Files {
		sum, err := FileSHA256(p)
		if err != nil {
			return nil, err
		}
		m := FileMatch{Path: p, SHA256: sum}
		for _, s := range st.Subject {
			if strings.EqualFold(s.Digest["sha256"], sum) {
				m.Subject = s.Name
				break
			}
		}
		if m.Subject == "" {
			return nil, fmt.Errorf("%w: %s (sha256 %s) is not a subject of this attestation", ErrNotAttested, p, sum)
		}
		c.Files = append(c.Files, m)
	}
	if opts.PolicyPath != "" {
		sum, err := FileSHA256(opts.PolicyPath)
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(sum, st.Predicate.Policy.SHA256) {
			return nil, fmt.Errorf("%w: policy %s (sha256 %s) is not the attested policy %q (sha256 %s)", ErrNotAttested, opts.PolicyPath, sum, st.Predicate.Policy.Name, st.Predicate.Policy.SHA256)
		}
	}
	return c, nil
}
