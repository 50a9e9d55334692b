package report

import (
	"bytes"
	"crypto/ed25519"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/provkit/provkit/internal/buildinfo"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

// maxInput bounds one input document.
const maxInput = 256 << 20

// Document is one input, as the report shows it.
type Document struct {
	Source    string // the file it came from
	Kind      string // evidence.Kind*, or "ledger-export"
	Verdict   string
	Policy    evidence.PolicyRef
	Tool      string
	Time      time.Time
	Host      string
	Signature Signature
	Subjects  []evidence.Subject
	Rules     []evidence.RuleResult
	Phones    []Phone
}

// Signature says what is known of a document's signature.
type Signature struct {
	State string // "verified", "INVALID", "not checked", "unsigned"
	KeyID string
	Error string
}

// Phone is one device row.
type Phone struct {
	Serial, Verdict, Model, Fingerprint, Station string
	Time                                         time.Time
	Reasons                                      []string
	FailedRules                                  []string
}

// Count is a label with a number.
type Count struct {
	Label string
	N     int
}

// Report is what the template renders.
type Report struct {
	Title     string
	Generated time.Time
	Tool      string
	Documents []Document
	// Over every phone of every document:
	Phones       int
	ByVerdict    []Count
	ByFailedRule []Count
	Invalid      int // documents whose signature did not verify
	Unsigned     int
	NotChecked   int
}

// Options tune Load.
type Options struct {
	// Key, when set, verifies every attestation; without it signatures are "not checked".
	Key ed25519.PublicKey
}

// Load reads each input file into a Document.
func Load(paths []string, opts Options) (*Report, error) {
	r := &Report{Title: "provkit compliance report", Generated: time.Now().UTC().Truncate(time.Second), Tool: "provkit " + buildinfo.Get().String()}
	for _, p := range paths {
		d, err := loadOne(p, opts)
		if err != nil {
			return nil, err
		}
		r.Documents = append(r.Documents, *d)
	}
	r.summarize()
	return r, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("reading %s: larger than %d MiB", path, maxInput>>20)
	}
	return data, nil
}

// probe holds the top-level keys that tell the input kinds apart.
type probe struct {
	PayloadType *string         `json:"payloadType"`
	Devices     json.RawMessage `json:"devices"`
	Verdicts    json.RawMessage `json:"verdicts"`
	Image       json.RawMessage `json:"image"`
	Apps        json.RawMessage `json:"apps"`
}

// ErrUnknownInput says a file is none of the documents a report is made from.
var ErrUnknownInput = errors.New("not a provkit attestation, check, image audit or ledger export JSON document")

func loadOne(path string, opts Options) (*Document, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var pr probe
	if err := json.Unmarshal(data, &pr); err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", path, ErrUnknownInput, err)
	}
	d := &Document{Source: path}
	switch {
	case pr.PayloadType != nil:
		env, err := evidence.DecodeEnvelope(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		d.Signature = Signature{State: "not checked"}
		if opts.Key != nil {
			if id, err := env.Verify(opts.Key); err != nil {
				d.Signature = Signature{State: "INVALID", Error: err.Error()}
			} else {
				d.Signature = Signature{State: "verified", KeyID: id}
			}
		}
		if len(env.Signatures) > 0 && d.Signature.KeyID == "" {
			d.Signature.KeyID = env.Signatures[0].KeyID
		}
		st, err := evidence.DecodeStatement(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p := st.Predicate
		d.Kind, d.Verdict, d.Policy, d.Time, d.Host = p.Kind, p.Verdict, p.Policy, p.Time, p.Host
		d.Tool = p.Tool.Name + " " + p.Tool.Info.String()
		d.Subjects, d.Rules = st.Subject, p.Rules
		if p.Kind == evidence.KindDeviceCheck && len(p.Result) > 0 {
			var res checkDoc
			if err := json.Unmarshal(p.Result, &res); err == nil {
				d.Phones = res.phones()
			}
		}
	case pr.Devices != nil:
		var res checkDoc
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: reading check JSON: %w", path, err)
		}
		d.Kind, d.Signature = evidence.KindDeviceCheck, Signature{State: "unsigned"}
		d.Policy.Name = res.Summary.Policy
		d.Phones = res.phones()
		d.Verdict = verdictOfPhones(d.Phones)
		for _, ph := range res.Devices {
			d.Rules = append(d.Rules, evidence.Rules("device:"+ph.Serial, ph.Checks)...)
			for _, a := range ph.Apps {
				d.Rules = append(d.Rules, evidence.Rules("device:"+ph.Serial+"/"+a.Package, a.Checks)...)
			}
		}
	case pr.Verdicts != nil:
		var res struct {
			Verdicts []struct {
				Serial       string    `json:"serial"`
				Verdict      string    `json:"verdict"`
				Station      string    `json:"station"`
				Time         time.Time `json:"time"`
				PolicySHA256 string    `json:"policySha256"`
				Reasons      []string  `json:"reasons"`
				FailedRules  []string  `json:"failedRules"`
			} `json:"verdicts"`
		}
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: reading ledger export JSON: %w", path, err)
		}
		d.Kind, d.Signature = "ledger-export", Signature{State: "unsigned"}
		pols := map[string]bool{}
		for _, v := range res.Verdicts {
			d.Phones = append(d.Phones, Phone{Serial: v.Serial, Verdict: v.Verdict, Station: v.Station, Time: v.Time, Reasons: v.Reasons, FailedRules: v.FailedRules})
			pols[v.PolicySHA256] = true
		}
		if len(pols) == 1 {
			for k := range pols {
				d.Policy.SHA256 = k
			}
		}
		d.Verdict = verdictOfPhones(d.Phones)
	case pr.Image != nil && pr.Apps != nil:
		var res struct {
			Image struct {
				Path    string `json:"path"`
				Digests []struct {
					File   string `json:"file"`
					SHA256 string `json:"sha256"`
				} `json:"digests"`
			} `json:"image"`
			Policy     string         `json:"policy"`
			PolicyName string         `json:"policyName"`
			Compliant  bool           `json:"compliant"`
			Checks     []policy.Check `json:"checks"`
			Apps       []struct {
				Package string         `json:"package"`
				Checks  []policy.Check `json:"checks"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: reading image audit JSON: %w", path, err)
		}
		d.Kind, d.Signature = evidence.KindImageAudit, Signature{State: "unsigned"}
		d.Policy = evidence.PolicyRef{Name: res.PolicyName, Path: res.Policy}
		d.Verdict = evidence.VerdictNotCompliant
		if res.Compliant {
			d.Verdict = evidence.VerdictCompliant
		}
		d.Subjects = []evidence.Subject{{Name: res.Image.Path}}
		for _, dg := range res.Image.Digests {
			d.Subjects = append(d.Subjects, evidence.Subject{Name: dg.File, Digest: map[string]string{"sha256": dg.SHA256}})
		}
		d.Rules = evidence.Rules("image", res.Checks)
		for _, a := range res.Apps {
			d.Rules = append(d.Rules, evidence.Rules(a.Package, a.Checks)...)
		}
	default:
		return nil, fmt.Errorf("%s: %w", path, ErrUnknownInput)
	}
	return d, nil
}

// checkDoc is the JSON of `provkit check --json`.
type checkDoc struct {
	Devices []struct {
		Serial      string         `json:"serial"`
		Verdict     string         `json:"verdict"`
		Reasons     []string       `json:"reasons"`
		Model       string         `json:"model"`
		Fingerprint string         `json:"fingerprint"`
		Checks      []policy.Check `json:"checks"`
		Apps        []struct {
			Package string         `json:"package"`
			Checks  []policy.Check `json:"checks"`
		} `json:"apps"`
	} `json:"devices"`
	Summary struct {
		Policy string `json:"policy"`
	} `json:"summary"`
}

func (c checkDoc) phones() []Phone {
	var out []Phone
	for _, d := range c.Devices {
		ph := Phone{Serial: d.Serial, Verdict: d.Verdict, Model: d.Model, Fingerprint: d.Fingerprint, Reasons: d.Reasons}
		seen := map[string]bool{}
		add := func(cs []policy.Check) {
			for _, f := range policy.Failed(cs) {
				if !seen[f.Rule] {
					seen[f.Rule] = true
					ph.FailedRules = append(ph.FailedRules, f.Rule)
				}
			}
		}
		add(d.Checks)
		for _, a := range d.Apps {
			add(a.Checks)
		}
		out = append(out, ph)
	}
	return out
}

func verdictOfPhones(ps []Phone) string {
	v := evidence.VerdictCompliant
	for _, p := range ps {
		switch p.Verdict {
		case "error", "interrupted":
			return evidence.VerdictError
		case "fail":
			v = evidence.VerdictNotCompliant
		}
	}
	return v
}

func (r *Report) summarize() {
	verdicts, rules := map[string]int{}, map[string]int{}
	for _, d := range r.Documents {
		switch d.Signature.State {
		case "INVALID":
			r.Invalid++
		case "unsigned":
			r.Unsigned++
		case "not checked":
			r.NotChecked++
		}
		for _, p := range d.Phones {
			r.Phones++
			verdicts[p.Verdict]++
			for _, fr := range p.FailedRules {
				rules[fr]++
			}
		}
	}
	r.ByVerdict, r.ByFailedRule = sorted(verdicts), sorted(rules)
}

func sorted(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Label < out[j].Label
	})
	return out
}

//go:embed report.html
var pageSource string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"join":  strings.Join,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"verdictClass": func(v string) string {
		switch v {
		case evidence.VerdictCompliant, "pass":
			return "pass"
		case evidence.VerdictNotCompliant, "fail":
			return "fail"
		}
		return "error"
	},
}).Parse(pageSource))

// Render writes the report as one HTML document.
func (r *Report) Render(w io.Writer) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, r); err != nil {
		return fmt.Errorf("rendering report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
