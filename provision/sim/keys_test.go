package sim

import "github.com/provkit/provkit/provision/adb/wire"

func wireGenerateKey() (string, error) {
	k, err := wire.GenerateKey()
	if err != nil {
		return "", err
	}
	return wire.EncodePublicKey(&k.PublicKey, "other@host")
}
