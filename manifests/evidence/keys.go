package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"os"
	"path/filepath"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// File names written by GenerateKeys.
const (
	PrivateKeyFile = "provkit.key"
	PublicKeyFile  = "provkit.pub"
)

// maxKeyFile bounds a key file read from disk: a PEM Ed25519 key is about 120 bytes.
const maxKeyFile = 64 << 10

// KeyID is the lowercase hex SHA-256 of pub's DER SubjectPublicKeyInfo.
func KeyID(pub ed25519.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// GenerateKeys writes a new Ed25519 key pair into dir: provkit.key (PKCS#8 PEM, mode 0600) and
// provkit.pub (SubjectPublicKeyInfo PEM, mode 0644). It never overwrites an existing file. It
// returns the key id.
func GenerateKeys(dir string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating Ed25519 key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encoding private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	privPath, pubPath := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("writing keys: %s already exists; keys are never overwritten (choose another --out)", p)
		}
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return "", err
	}
	return KeyID(pub)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Chmod(path, mode)
}

// ErrKeyPermissions says a private key file can be read by others than its owner.
var ErrKeyPermissions = errors.New("private key is readable by others")

func readKeyFile(path string) ([]byte, os.FileInfo, error) {
	f, err := safeopen.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("reading key %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, nil, fmt.Errorf("reading key %s: larger than %d bytes, not a PEM key", path, maxKeyFile)
	}
	return data, fi, nil
}

// LoadPrivateKey reads a PKCS#8 PEM Ed25519 private key. Like ssh, it refuses a file that its
// group or others may read.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, fi, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("reading key %s: %w (mode %04o); run: chmod 600 %s", path, ErrKeyPermissions, fi.Mode().Perm(), path)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("reading key %s: not a PEM \"PRIVATE KEY\" (PKCS#8); make one with 'provkit keys generate'", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reading key %s: a %T, provkit signs with Ed25519 keys only", path, k)
	}
	return ek, nil
}

// LoadPublicKey reads a SubjectPublicKeyInfo PEM Ed25519 public key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("reading key %s: not a PEM \"PUBLIC KEY\"", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("reading key %s: a %T, provkit verifies Ed25519 keys only", path, k)
	}
	return ek, nil
}
