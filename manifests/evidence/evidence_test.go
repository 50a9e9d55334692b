package evidence

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
	"github.com/provkit/provkit/manifests/policy"
)

// The DSSE spec's worked example of the pre-authentication encoding.
func TestPAESpecExample(t *testing.T) {
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
	if got := string(PAE("", nil)); got != "DSSEv1 0  0 " {
		t.Fatalf("PAE of empty = %q", got)
	}
}

func newKeys(t *testing.T) (dir string, priv ed25519.PrivateKey, pub ed25519.PublicKey) {
	t.Helper()
	dir = t.TempDir()
	if _, err := GenerateKeys(dir); err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err = LoadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, priv, pub
}

func TestGenerateKeysModesAndNoOverwrite(t *testing.T) {
	dir, priv, pub := newKeys(t)
	fi, err := os.Stat(filepath.Join(dir, PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %o, want 600", fi.Mode().Perm())
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("public key file does not match the private key")
	}
	if _, err := GenerateKeys(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second GenerateKeys into the same dir: %v, want a refusal", err)
	}
	if err := os.Chmod(filepath.Join(dir, PrivateKeyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, PrivateKeyFile)); !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("group-readable key: %v, want ErrKeyPermissions", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, PublicKeyFile)); err == nil {
		t.Fatal("a public key file was accepted as a private key")
	}
}

func testStatement(t *testing.T, files ...string) (*Statement, string) {
	t.Helper()
	dir := t.TempDir()
	polPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polPath, []byte(`apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "`+strings.Repeat("ab", 32)+`"}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(polPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCompliance(KindImageAudit, pol)
	if err != nil {
		t.Fatal(err)
	}
	c.Verdict = VerdictCompliant
	c.Rules = Rules("ru.oneme.app", []policy.Check{{Rule: policy.RuleSignerPin, Pass: true, Detail: "pinned"}})
	st := &Statement{Predicate: c}
	for _, f := range files {
		s, err := FileSubject(f)
		if err != nil {
			t.Fatal(err)
		}
		st.Subject = append(st.Subject, s)
	}
	st.Subject = append(st.Subject, DeviceSubject("R58M123", "google/redfin/redfin:14/UQ1A/1:user/release-keys", "Pixel 5"))
	return st, polPath
}

func TestSignVerifyRoundTrip(t *testing.T) {
	dir, priv, pub := newKeys(t)
	img := filepath.Join(dir, "system.img")
	os.WriteFile(img, []byte("an image"), 0o644)
	other := filepath.Join(dir, "other.img")
	os.WriteFile(other, []byte("another image"), 0o644)
	st, polPath := testStatement(t, img)
	env, err := Sign(st, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(env, pub, VerifyOptions{Files: []string{img}, PolicyPath: polPath})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Statement.Predicate.Policy.Name != "national-messenger" || len(c.Files) != 1 || c.Files[0].Subject != img {
		t.Fatalf("unexpected check result %+v", c)
	}
	if _, err := Verify(env, pub, VerifyOptions{Files: []string{other}}); !errors.Is(err, ErrNotAttested) {
		t.Fatalf("a file that is not a subject: %v, want ErrNotAttested", err)
	}
	os.WriteFile(polPath, []byte("apiVersion: provkit.dev/v1\n# edited\n"), 0o644)
	if _, err := Verify(env, pub, VerifyOptions{PolicyPath: polPath}); !errors.Is(err, ErrNotAttested) {
		t.Fatalf("an edited policy: %v, want ErrNotAttested", err)
	}
	// Another key fails.
	_, _, pub2 := newKeys(t)
	if _, err := Verify(env, pub2, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another key: %v, want ErrBadSignature", err)
	}
}

// Every single flipped byte of the serialized envelope either makes it unreadable or fails the
// signature: nothing in it can change and still verify.
func TestFlippedByteFails(t *testing.T) {
	_, priv, pub := newKeys(t)
	st, _ := testStatement(t)
	env, err := Sign(st, priv)
	if err != nil {
		t.Fatal(err)
	}
	// Payload bytes: flip each bit position in a sample of bytes of the decoded payload.
	payload, _ := env.PayloadBytes()
	for i := 0; i < len(payload); i += 7 {
		p := append([]byte(nil), payload...)
		p[i] ^= 0x01
		bad := *env
		bad.Payload = base64.StdEncoding.EncodeToString(p)
		if _, err := Verify(&bad, pub, VerifyOptions{}); err == nil {
			t.Fatalf("payload byte %d flipped still verifies", i)
		}
	}
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	for i := range sig {
		s := append([]byte(nil), sig...)
		s[i] ^= 0x80
		bad := *env
		bad.Signatures = []Signature{{KeyID: env.Signatures[0].KeyID, Sig: base64.StdEncoding.EncodeToString(s)}}
		if _, err := Verify(&bad, pub, VerifyOptions{}); err == nil {
			t.Fatalf("signature byte %d flipped still verifies", i)
		}
	}
	bad := *env
	bad.PayloadType = "application/vnd.in-toto+jsoN"
	if _, err := Verify(&bad, pub, VerifyOptions{}); err == nil {
		t.Fatal("a changed payloadType still verifies")
	}
	// And over the serialized file: every byte flipped (to another printable byte) breaks it.
	data, _ := json.Marshal(env)
	for i := 0; i < len(data); i++ {
		d := append([]byte(nil), data...)
		d[i] ^= 0x01
		e, err := DecodeEnvelope(d)
		if err != nil {
			continue
		}
		if _, err := Verify(e, pub, VerifyOptions{}); err == nil {
			// Flipping a bit can leave the same decoded envelope only in JSON syntax that does
			// not matter; compare what was decoded.
			if e.Payload == env.Payload && e.PayloadType == env.PayloadType && e.Signatures[0].Sig == env.Signatures[0].Sig {
				continue
			}
			t.Fatalf("envelope byte %d flipped (%q) still verifies", i, d[max(0, i-10):min(len(d), i+10)])
		}
	}
}

// OpenSSL, an independent implementation, verifies provkit's signature over the PAE that this test
// computes itself from the envelope's fields.
func TestOpenSSLVerifiesSignature(t *testing.T) {
	testtool.Require(t, "openssl")
	dir, priv, _ := newKeys(t)
	st, _ := testStatement(t)
	env, err := Sign(st, priv)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	pae := "DSSEv1 " + itoa(len(env.PayloadType)) + " " + env.PayloadType + " " + itoa(len(payload)) + " " + string(payload)
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	paePath, sigPath := filepath.Join(dir, "pae.bin"), filepath.Join(dir, "sig.bin")
	os.WriteFile(paePath, []byte(pae), 0o644)
	os.WriteFile(sigPath, sig, 0o644)
	verify := func(in string) error {
		out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(dir, PublicKeyFile), "-rawin", "-in", in, "-sigfile", sigPath).CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := verify(paePath); err != nil {
		t.Fatalf("openssl rejects provkit's signature: %v", err)
	}
	// OpenSSL must reject a changed message, or this test proves nothing.
	tampered := filepath.Join(dir, "tampered.bin")
	os.WriteFile(tampered, []byte(strings.Replace(pae, "compliant", "Compliant", 1)), 0o644)
	if err := verify(tampered); err == nil {
		t.Fatal("openssl accepted a tampered message")
	}
	// And the key id is the SHA-256 of the DER public key as openssl encodes it.
	der, err := exec.Command("openssl", "pkey", "-pubin", "-in", filepath.Join(dir, PublicKeyFile), "-outform", "DER").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256hex(der); got != env.Signatures[0].KeyID {
		t.Fatalf("keyid %s, openssl's DER hashes to %s", env.Signatures[0].KeyID, got)
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":        "hello",
		"unknown field":   `{"payloadType":"a","payload":"","signatures":[{"keyid":"","sig":""}],"x":1}`,
		"no signatures":   `{"payloadType":"a","payload":"","signatures":[]}`,
		"bad base64":      `{"payloadType":"a","payload":"!!","signatures":[{"keyid":"","sig":""}]}`,
		"trailing":        `{"payloadType":"a","payload":"","signatures":[{"keyid":"","sig":""}]} {}`,
		"no payload type": `{"payload":"","signatures":[{"keyid":"","sig":""}]}`,
	} {
		if _, err := DecodeEnvelope([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}`))
	f.Add([]byte(`{}`))
	pub, _, _ := ed25519.GenerateKey(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeEnvelope(data)
		if err != nil {
			return
		}
		_, _ = env.Verify(pub)
		_, _ = DecodeStatement(env)
	})
}
