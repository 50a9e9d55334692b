package flash

import (
	"errors"
	"fmt"
	"strings"

	"github.com/provkit/provkit/firmware/factoryzip"
)

// ErrRequirement is wrapped by CheckRequirements when the device does not match android-info.txt.
var ErrRequirement = errors.New("device does not meet the firmware's requirements")

// getvarName maps android-info.txt names to the getvar variable fastboot asks.
var getvarName = map[string]string{"board": "product", "version-bootloader": "version-bootloader",
	"version-baseband": "version-baseband"}

// CheckRequirements checks each "require" line of android-info.txt against the device's getvar
// answers, as fastboot does before flashing. getvar returns a variable's value. Matching is
// fastboot's: case-insensitive, a trailing '*' in the required value matches any suffix.
func CheckRequirements(info *factoryzip.AndroidInfo, getvar func(name string) (string, error)) error {
	if info == nil {
		return nil
	}
	keys := make([]string, 0, len(info.Require))
	for k := range info.Require {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		v := getvarName[k]
		if v == "" {
			v = k
		}
		got, err := getvar(v)
		if err != nil {
			return fmt.Errorf("checking requirement %s: getvar %s: %w", k, v, err)
		}
		if !matchAny(got, info.Require[k]) {
			return fmt.Errorf("requirement %s: device says %q, firmware needs %s: %w", k, got,
				strings.Join(info.Require[k], " or "), ErrRequirement)
		}
	}
	return nil
}

func matchAny(got string, want []string) bool {
	for _, w := range want {
		if pre, ok := strings.CutSuffix(w, "*"); ok {
			if len(got) >= len(pre) && strings.EqualFold(got[:len(pre)], pre) {
				return true
			}
			continue
		}
		if strings.EqualFold(got, w) {
			return true
		}
	}
	return false
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
