package adb

import (
	"strings"
	"testing"
)

// A getprop excerpt in the shape real devices print it (Pixel 5, Android 13), including
// persist.sys.boot.reason.history, whose value spans lines on Android 9 and later, an empty value
// and a value with brackets.
const getpropSample = `[dalvik.vm.heapsize]: [512m]
[persist.sys.boot.reason.history]: [reboot,adb,1696000000
reboot,userrequested,1695990000
reboot,ota,1695980000]
[ro.build.description]: [redfin-user 13 TQ3A.230901.001 10750268 release-keys]
[ro.build.fingerprint]: [google/redfin/redfin:13/TQ3A.230901.001/10750268:user/release-keys]
[ro.product.model]: [Pixel 5]
[ro.vendor.build.security_patch]: []
[vendor.odd]: [a]b]
`

func TestParseGetprop(t *testing.T) {
	props, err := ParseGetprop(getpropSample)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"dalvik.vm.heapsize":              "512m",
		"persist.sys.boot.reason.history": "reboot,adb,1696000000\nreboot,userrequested,1695990000\nreboot,ota,1695980000",
		"ro.build.description":            "redfin-user 13 TQ3A.230901.001 10750268 release-keys",
		"ro.build.fingerprint":            "google/redfin/redfin:13/TQ3A.230901.001/10750268:user/release-keys",
		"ro.product.model":                "Pixel 5",
		"ro.vendor.build.security_patch":  "",
		"vendor.odd":                      "a]b",
	}
	if len(props) != len(want) {
		t.Fatalf("got %d properties, want %d: %q", len(props), len(want), props)
	}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("%s = %q, want %q", k, props[k], v)
		}
	}
	// Terminal line endings (a legacy shell through a pty) change nothing.
	crlf, err := ParseGetprop(strings.ReplaceAll(getpropSample, "\n", "\r\n"))
	if err != nil || crlf["ro.product.model"] != "Pixel 5" || crlf["persist.sys.boot.reason.history"] != want["persist.sys.boot.reason.history"] {
		t.Fatalf("CRLF output: %v %q", err, crlf)
	}
	for _, bad := range []string{"garbage\n", "[a]: [never closed\n[b]: [x"} {
		if _, err := ParseGetprop(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseGetprop(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}

// A value that spans very many lines (a device that prints megabytes of an unclosed value) is
// parsed in time linear in its size: it used to be re-copied for every line it grew by, and
// half a million two-byte lines took hours.
func TestParseGetpropManyLineValue(t *testing.T) {
	const n = 500000
	body := strings.Repeat("x\n", n)
	props, err := ParseGetprop("[a]: [" + body + "]\n[b]: [c]\n")
	if err != nil {
		t.Fatal(err)
	}
	if props["a"] != body || props["b"] != "c" || len(props) != 2 {
		t.Fatalf("got %d properties, a of %d bytes, b %q", len(props), len(props["a"]), props["b"])
	}
	if _, err := ParseGetprop("[a]: [" + body); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("unclosed value: %v", err)
	}
}

func TestParseInstallOutput(t *testing.T) {
	for out, want := range map[string]string{
		"Success\n":                              "",
		"Performing Streamed Install\nSuccess\n": "",
		"Failure [INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: Update version code 1 is older than current 25]\n":                   "INSTALL_FAILED_VERSION_DOWNGRADE",
		"Failure [INSTALL_FAILED_UPDATE_INCOMPATIBLE: Package ru.oneme.app signatures do not match previously installed version; ignoring!]": "INSTALL_FAILED_UPDATE_INCOMPATIBLE",
		"Failure [INSTALL_PARSE_FAILED_NO_CERTIFICATES]\n":                                                                                   "INSTALL_PARSE_FAILED_NO_CERTIFICATES",
		"adb: failed to install x.apk: Failure [INSTALL_FAILED_INSUFFICIENT_STORAGE]":                                                        "",
	} {
		err := ParseInstallOutput(out)
		if want == "" {
			if strings.HasPrefix(out, "adb:") {
				if err == nil {
					t.Errorf("%q: accepted", out)
				}
				continue
			}
			if err != nil {
				t.Errorf("%q: %v", out, err)
			}
			continue
		}
		ie, ok := err.(*InstallError)
		if !ok || ie.Code != want {
			t.Errorf("%q: %v, want code %s", out, err, want)
		}
	}
	for _, out := range []string{"", "Error: Unable to open file: x.apk\n"} {
		if err := ParseInstallOutput(out); err == nil {
			t.Errorf("%q accepted as success", out)
		}
	}
}

func FuzzParseGetprop(f *testing.F) {
	f.Add(getpropSample)
	f.Add("[a]: [b]\n[c]: [d\n]\n")
	f.Add("[a]: [")
	f.Fuzz(func(t *testing.T, in string) {
		props, err := ParseGetprop(in)
		if err != nil {
			return
		}
		total := 0
		for k, v := range props {
			total += len(k) + len(v)
		}
		if total > len(in) {
			t.Fatalf("%d bytes of properties from %d bytes of input", total, len(in))
		}
	})
}

func FuzzParseInstallOutput(f *testing.F) {
	for _, s := range []string{"Success\n", "Failure [INSTALL_FAILED_X: y]", "Failure", "Failure [", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		err := ParseInstallOutput(out)
		if err == nil && !strings.Contains(out, "Success") {
			t.Fatalf("%q accepted without a Success line", out)
		}
		if ie, ok := err.(*InstallError); ok && ie.Code == "" && !strings.Contains(out, "Failure [") {
			t.Fatalf("%q: an InstallError without a code", out)
		}
	})
}
