package adb

import (
	"reflect"
	"strings"
	"testing"
)

// Device lines in the shapes real adb servers print (platform-tools 29 to 35), including the
// multi-word "no permissions" state with its hint and mDNS serials.
var devicesSamples = []string{
	"emulator-5554\tdevice\n",
	"emulator-5554          device product:sdk_gphone_x86 model:Android_SDK_built_for_x86 device:generic_x86 transport_id:1\n",
	"0123456789ABCDEF       device usb:1-1 product:razor model:Nexus_7 device:flo transport_id:2\n" +
		"192.168.1.5:5555       offline transport_id:3\n" +
		"ZY2243ABCD             unauthorized usb:1-1.4 transport_id:4\n",
	"????????????           no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-1.3 transport_id:5\n",
	"adb-R58M12345-AbCdEf._adb-tls-connect._tcp device product:a52qnsxx model:SM_A525F device:a52q transport_id:7\n",
	"HT4B1JT00123           recovery usb:2-1 product:omni_m8 model:HTC_One_M8 device:m8 transport_id:9\n",
	"emulator-5556\tbootloader\n\nemulator-5558\tsideload\n",
}

func TestParseDevices(t *testing.T) {
	got, err := ParseDevices(strings.Join(devicesSamples, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := []DeviceInfo{
		{Serial: "emulator-5554", State: StateDevice},
		{Serial: "emulator-5554", State: StateDevice, Product: "sdk_gphone_x86", Model: "Android_SDK_built_for_x86", Device: "generic_x86", TransportID: 1},
		{Serial: "0123456789ABCDEF", State: StateDevice, DevPath: "usb:1-1", Product: "razor", Model: "Nexus_7", Device: "flo", TransportID: 2},
		{Serial: "192.168.1.5:5555", State: StateOffline, TransportID: 3},
		{Serial: "ZY2243ABCD", State: StateUnauthorized, DevPath: "usb:1-1.4", TransportID: 4},
		{Serial: "????????????", State: StateNoPermissions, StateDetail: "(missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html]", DevPath: "usb:1-1.3", TransportID: 5},
		{Serial: "adb-R58M12345-AbCdEf._adb-tls-connect._tcp", State: StateDevice, Product: "a52qnsxx", Model: "SM_A525F", Device: "a52q", TransportID: 7},
		{Serial: "HT4B1JT00123", State: StateRecovery, DevPath: "usb:2-1", Product: "omni_m8", Model: "HTC_One_M8", Device: "m8", TransportID: 9},
		{Serial: "emulator-5556", State: StateBootloader},
		{Serial: "emulator-5558", State: StateSideload},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDevices:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDevicesErrors(t *testing.T) {
	for _, in := range []string{"lonely-serial\n", "s device transport_id:x\n"} {
		if _, err := ParseDevices(in); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseDevices(%q) = %v, want an error naming line 1", in, err)
		}
	}
	if d, err := ParseDevices("s device newfield:42 odd\n"); err != nil || d[0].Extra["newfield"] != "42" {
		t.Errorf("unknown fields are not kept: %+v %v", d, err)
	}
}

func TestInterpretConnect(t *testing.T) {
	for _, tc := range []struct {
		msg, serial string
		already     bool
		wantErr     string
		unauth      bool
	}{
		{msg: "connected to 127.0.0.1:6000", serial: "127.0.0.1:6000"},
		{msg: "already connected to 127.0.0.1:6000", serial: "127.0.0.1:6000", already: true},
		{msg: "failed to connect to '127.0.0.1:1': Connection refused", wantErr: "Connection refused"},
		{msg: "cannot connect to 127.0.0.1:1: Connection refused", wantErr: "cannot connect"},
		{msg: "failed to authenticate to 127.0.0.1:6000", wantErr: "failed to authenticate", unauth: true},
		{msg: "", wantErr: "empty reply"},
		{msg: "failed to connect to 127.0.0.1:6000", wantErr: "does not complete the handshake"},
	} {
		r, err := interpretConnect("127.0.0.1:6000", tc.msg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "127.0.0.1:6000") {
				t.Errorf("%q: err %v, want one containing %q and the address", tc.msg, err, tc.wantErr)
			}
			if tc.unauth != (err != nil && isUnauthorized(err)) {
				t.Errorf("%q: ErrUnauthorized match = %v", tc.msg, !tc.unauth)
			}
			continue
		}
		if err != nil || r.Serial != tc.serial || r.AlreadyConnected != tc.already {
			t.Errorf("%q: %+v %v", tc.msg, r, err)
		}
	}
}

func isUnauthorized(err error) bool { return stateOf(err) == StateUnauthorized }

func TestFailErrorClassification(t *testing.T) {
	for msg, want := range map[string]State{
		"device 'x' not found":       StateGone,
		"no devices/emulators found": StateGone,
		"device offline":             StateOffline,
		"device still connecting":    StateOffline,
		"device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\nTry 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device.": StateUnauthorized,
		"device still authorizing": StateUnauthorized,
		"closed":                   "",
	} {
		if got := stateOf(&FailError{Request: "host:transport:x", Message: msg}); got != want {
			t.Errorf("%q -> %q, want %q", msg, got, want)
		}
	}
}

func FuzzParseDevices(f *testing.F) {
	for _, s := range devicesSamples {
		f.Add(s)
	}
	f.Add("a no permissions usb:1 transport_id:2")
	f.Add("a no permissions [x] y")
	f.Fuzz(func(t *testing.T, in string) {
		devs, err := ParseDevices(in)
		if err != nil {
			return
		}
		for _, d := range devs {
			if d.Serial == "" || d.State == "" {
				t.Fatalf("parsed a device with an empty serial or state: %+v from %q", d, in)
			}
			if strings.ContainsAny(d.Serial, " \t\n") {
				t.Fatalf("serial %q holds white space", d.Serial)
			}
		}
		if len(devs) > maxDevicesLines {
			t.Fatalf("%d devices, more than the bound", len(devs))
		}
	})
}

func FuzzParseHexLength(f *testing.F) {
	for _, s := range []string{"0000", "ffff", "00aB", "zzzz", "12"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseHexLength(b)
		if err != nil {
			return
		}
		if len(b) != 4 || n < 0 || n > 0xffff {
			t.Fatalf("ParseHexLength(%q) = %d", b, n)
		}
	})
}
