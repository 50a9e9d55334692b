package adb

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/provkit/provkit/provision/adb/wire"
)

// AndroidDir returns the directory adb keeps its user key in: $ANDROID_USER_HOME if set, else
// $ANDROID_SDK_HOME/.android, else $HOME/.android.
func AndroidDir() (string, error) {
	if d := os.Getenv("ANDROID_USER_HOME"); d != "" {
		return d, nil
	}
	if d := os.Getenv("ANDROID_SDK_HOME"); d != "" {
		return filepath.Join(d, ".android"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", fmt.Errorf("finding the adb key directory: neither ANDROID_USER_HOME nor HOME is set")
	}
	return filepath.Join(home, ".android"), nil
}

// LoadKey reads an adbkey file (PEM, PKCS#8 or PKCS#1, 2048-bit RSA).
func LoadKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading adb key: %w", err)
	}
	k, err := wire.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("reading adb key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKey returns the key in dir/adbkey, creating it (and dir/adbkey.pub, in the format adb
// writes) when there is none, as adb does on first use. The files are written whole or not at all.
func LoadOrCreateKey(dir string) (key *rsa.PrivateKey, created bool, err error) {
	path := filepath.Join(dir, "adbkey")
	key, err = LoadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = wire.GenerateKey()
	if err != nil {
		return nil, false, err
	}
	priv, err := wire.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	pub, err := wire.EncodePublicKey(&key.PublicKey, keyComment())
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, fmt.Errorf("creating the adb key directory: %w", err)
	}
	// The public half first: a crash between the two leaves no private key without its .pub.
	if err := writeFileAtomic(path+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(path, priv, 0o600); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// PublicKeyText returns key's public half in adbkey.pub format ("<base64> user@host").
func PublicKeyText(key *rsa.PrivateKey) (string, error) {
	return wire.EncodePublicKey(&key.PublicKey, keyComment())
}

// VendorKeys loads the keys named by ADB_VENDOR_KEYS (a list of files, or directories whose
// *.adb_key files are read, separated by ':'), as adb does. Unreadable entries are reported.
func VendorKeys() ([]*rsa.PrivateKey, error) {
	var keys []*rsa.PrivateKey
	var errs []error
	for _, p := range filepath.SplitList(os.Getenv("ADB_VENDOR_KEYS")) {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading ADB_VENDOR_KEYS entry: %w", err))
			continue
		}
		files := []string{p}
		if st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(p, "*.adb_key"))
		}
		for _, f := range files {
			k, err := LoadKey(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			keys = append(keys, k)
		}
	}
	return keys, errors.Join(errs...)
}

func keyComment() string {
	name := "provkit"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return strings.ReplaceAll(name+"@"+host, " ", "_")
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
