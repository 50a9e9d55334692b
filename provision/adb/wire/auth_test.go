package wire

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func key(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := GenerateKey()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

func TestPublicKeyRoundTrip(t *testing.T) {
	k := key(t)
	s, err := EncodePublicKey(&k.PublicKey, "user@host")
	if err != nil {
		t.Fatal(err)
	}
	// The AUTH payload form: NUL-terminated.
	pub, comment, err := ParsePublicKey(s + "\x00")
	if err != nil {
		t.Fatal(err)
	}
	if comment != "user@host" || pub.N.Cmp(k.N) != 0 || pub.E != k.E {
		t.Fatalf("round trip: comment %q, same modulus %v, e %d", comment, pub.N.Cmp(k.N) == 0, pub.E)
	}
}

// TestPublicKeyMatchesAdbKeygen cross-checks the encoding against the real adb: the .pub file that
// `adb keygen` writes must parse to the public half of its private key, and encoding that key must
// give back the same base64 text.
func TestPublicKeyMatchesAdbKeygen(t *testing.T) {
	adb := testtool.Require(t, "adb")[0]
	dir := t.TempDir()
	cmd := exec.Command(adb, "keygen", filepath.Join(dir, "adbkey"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "ANDROID_SDK_HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adb keygen: %v\n%s", err, out)
	}
	privPEM, err := os.ReadFile(filepath.Join(dir, "adbkey"))
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(filepath.Join(dir, "adbkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, comment, err := ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	if pub.N.Cmp(priv.N) != 0 || pub.E != priv.E {
		t.Fatal("adbkey.pub does not hold adbkey's public key")
	}
	enc, err := EncodePublicKey(pub, comment)
	if err != nil {
		t.Fatal(err)
	}
	if enc != string(pubText) {
		t.Fatalf("re-encoded key differs from adb's:\n got %.80s...\nwant %.80s...", enc, pubText)
	}
	// A token signed with adb's key verifies with the parsed public key.
	tok, _ := NewToken()
	sig, err := SignToken(priv, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyToken(pub, tok, sig); err != nil {
		t.Fatal(err)
	}
}

func TestSignVerify(t *testing.T) {
	k := key(t)
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignToken(k, tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 256 {
		t.Fatalf("signature of %d bytes", len(sig))
	}
	if err := VerifyToken(&k.PublicKey, tok, sig); err != nil {
		t.Fatal(err)
	}
	tok[0] ^= 1
	if err := VerifyToken(&k.PublicKey, tok, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered token: %v", err)
	}
	if _, err := SignToken(k, tok[:19]); err == nil {
		t.Fatal("signed a 19-byte token")
	}
}

func TestPrivateKeyPEM(t *testing.T) {
	k := key(t)
	b, err := MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(k2) {
		t.Fatal("private key round trip differs")
	}
	if _, err := ParsePrivateKey([]byte("not a key")); err == nil {
		t.Fatal("parsed garbage")
	}
}

func TestParsePublicKeyRejectsCorruption(t *testing.T) {
	k := key(t)
	bin, err := MarshalPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(off int, mask byte) string {
		b := append([]byte(nil), bin...)
		b[off] ^= mask
		return base64.StdEncoding.EncodeToString(b)
	}
	for name, s := range map[string]string{
		"word count": corrupt(0, 0x10),
		"n0inv":      corrupt(4, 0x10),
		"modulus":    corrupt(8+100, 0x10),
		"rr":         corrupt(8+256+3, 0x10),
		"exponent":   corrupt(8+512, 0x01),
		"short":      base64.StdEncoding.EncodeToString(bin[:100]),
		"not base64": "!!!! user@host",
	} {
		if _, _, err := ParsePublicKey(s); !errors.Is(err, ErrBadPublicKey) {
			t.Errorf("%s: got %v, want ErrBadPublicKey", name, err)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	k, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	s, _ := EncodePublicKey(&k.PublicKey, "a@b")
	f.Add(s)
	f.Add(s + "\x00")
	f.Add("QAAAAA== x")
	f.Fuzz(func(t *testing.T, s string) {
		pub, comment, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadPublicKey) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		// Anything accepted is a consistent key that encodes back to the same base64.
		enc, err := EncodePublicKey(pub, comment)
		if err != nil {
			t.Fatalf("accepted key does not re-encode: %v", err)
		}
		pub2, _, err := ParsePublicKey(enc)
		if err != nil || pub2.N.Cmp(pub.N) != 0 || pub2.E != pub.E {
			t.Fatalf("re-encoded key does not parse back: %v", err)
		}
	})
}
