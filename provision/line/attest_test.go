package line

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/provkit/provkit/internal/testline"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/provision/ledger"
)

// With an attestation key, every phone's verdict is recorded with a signed in-toto statement that
// verifies with the public key, names the phone and carries the verdict.
func TestStationAttestsEachVerdict(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, 2, testline.Options{Missing: 2})
	cfg := r.config(newCollector())
	cfg.StopAfter, cfg.AttestKey = 2, priv
	if sum := run(t, cfg); sum.Pass != 1 || sum.Fail != 1 {
		t.Fatalf("summary %+v", sum)
	}
	vs, err := r.ledger.Verdicts(context.Background(), ledger.Filter{})
	if err != nil || len(vs) != 2 {
		t.Fatalf("verdicts %d, %v", len(vs), err)
	}
	for _, v := range vs {
		env, err := evidence.DecodeEnvelope(v.Attestation)
		if err != nil {
			t.Fatalf("%s: attestation %q: %v", v.Serial, v.Attestation, err)
		}
		c, err := evidence.Verify(env, pub, evidence.VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", v.Serial, err)
		}
		want := map[string]string{ledger.VerdictPass: evidence.VerdictCompliant, ledger.VerdictFail: evidence.VerdictNotCompliant}[v.Verdict]
		if c.Statement.Predicate.Verdict != want || c.Statement.Subject[0].Annotations["serial"] != v.Serial {
			t.Fatalf("%s (%s): statement says %s about %+v", v.Serial, v.Verdict, c.Statement.Predicate.Verdict, c.Statement.Subject)
		}
	}
}
