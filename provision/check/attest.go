package check

import (
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

// Statement builds the in-toto statement of a check: one subject per device (serial, build
// fingerprint, model), every rule of every device and app, and the overall verdict (error when a
// device could not be checked, not-compliant when one failed). The caller signs it
// (evidence.Sign) after setting the predicate's Result. `provkit check --attest` and a factory
// station's per-phone record use it.
func Statement(pol *policy.Policy, results []Result) (*evidence.Statement, error) {
	c, err := evidence.NewCompliance(evidence.KindDeviceCheck, pol)
	if err != nil {
		return nil, err
	}
	st := &evidence.Statement{Predicate: c}
	sum := Summarize(pol, results)
	switch {
	case sum.Error > 0:
		c.Verdict = evidence.VerdictError
	case sum.Fail > 0 || sum.Devices == 0:
		c.Verdict = evidence.VerdictNotCompliant
	default:
		c.Verdict = evidence.VerdictCompliant
	}
	for _, r := range results {
		st.Subject = append(st.Subject, evidence.DeviceSubject(r.Serial, r.Fingerprint, r.Model))
		name := "device:" + r.Serial
		c.Rules = append(c.Rules, evidence.Rules(name, r.Checks)...)
		for _, a := range r.Apps {
			c.Rules = append(c.Rules, evidence.Rules(name+"/"+a.Package, a.Checks)...)
		}
		if r.Verdict == VerdictError {
			for _, reason := range r.Reasons {
				c.Rules = append(c.Rules, evidence.RuleResult{Subject: name, Rule: "device-reachable", Pass: false, Detail: reason})
			}
		}
	}
	return st, nil
}
