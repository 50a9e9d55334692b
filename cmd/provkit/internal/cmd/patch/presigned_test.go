package patch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testapk"
	"github.com/provkit/provkit/internal/testtool"
)

// fakeDex is enough of a dex file for the build checks, which look only at how it is stored.
var fakeDex = append([]byte("dex\n035\x00"), make([]byte, 4096)...)

// realTree writes the small product tree of the other tests with a real APK built by the vendor
// recipe (aapt, entries added, zipalign -p 4, apksigner) and a policy pinning its signer.
func realTree(t *testing.T, privileged bool, entries []testapk.Entry) string {
	t.Helper()
	root := setup(t)
	s := testapk.NewSigner(t, "vendor")
	apk := testapk.BuildWith(t, testapk.Spec{Package: "ru.oneme.app", VersionCode: 3, TargetSDK: 35, Signer: s}, entries)
	if err := os.WriteFile(filepath.Join(root, "apks/messenger.apk"), apk, 0o644); err != nil {
		t.Fatal(err)
	}
	pol := `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger}
apps:
  - package: ru.oneme.app
    apk: apks/messenger.apk
    module: Max
    privileged: ` + map[bool]string{true: "true", false: "false"}[privileged] + `
    signers: [{sha256: "` + s.CertSHA256() + `"}]
`
	if err := os.WriteFile(filepath.Join(root, "policy.yaml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestPresignedQualifyingAPK: an APK with uncompressed, aligned dex and JNI libraries targeting SDK
// 35 is declared preprocessed (Android.bp) or installed unprocessed (Android.mk), and the copy in
// the tree passes the real `zipalign -c -p 4` and, when a Soong checkout is at PROVKIT_SOONG_DIR,
// Soong's own check_prebuilt_presigned_apk.py.
func TestPresignedQualifyingAPK(t *testing.T) {
	zipalign := testtool.Require(t, "zipalign")[0]
	entries := []testapk.Entry{
		{Name: "classes.dex", Data: fakeDex, Stored: true},
		{Name: "lib/arm64-v8a/libmax.so", Data: make([]byte, 9000), Stored: true},
	}
	root := realTree(t, true, entries)
	out, errOut, code := run(t, root, apkInspector{})
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "installed byte for byte") {
		t.Errorf("the apply output does not say the APK is installed as is:\n%s", out)
	}
	bp, err := os.ReadFile(filepath.Join(root, "vendor/acme/preinstall/Max/Android.bp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(bp), "    preprocessed: true,\n") || !strings.Contains(string(bp), "    privileged: true,\n") {
		t.Fatalf("Android.bp does not declare the APK preprocessed and privileged:\n%s", bp)
	}
	installed := filepath.Join(root, "vendor/acme/preinstall/Max/Max.apk")
	if o, err := exec.Command(zipalign, "-c", "-p", "4", installed).CombinedOutput(); err != nil {
		t.Fatalf("zipalign -c -p 4 rejects what provkit declared preprocessed: %v\n%s", err, o)
	}
	runSoongCheck(t, installed, true, true)

	// The same APK as Android.mk: installed without any processing by app_prebuilt_internal.mk.
	out, errOut, code = run(t, root, apkInspector{}, "--format", "mk")
	if code != 0 {
		t.Fatalf("--format mk: exit %d\n%s%s", code, out, errOut)
	}
	mk, err := os.ReadFile(filepath.Join(root, "vendor/acme/preinstall/Max/Android.mk"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "LOCAL_REPLACE_PREBUILT_APK_INSTALLED := $(LOCAL_PATH)/Max.apk\n") {
		t.Fatalf("Android.mk lets the build rewrite the APK:\n%s", mk)
	}
}

// TestPresignedCompressedDex: a privileged app with compressed dex targeting SDK 35 would fail
// Soong's check: --check and apply block and name the entry and what to ask the vendor for.
func TestPresignedCompressedDex(t *testing.T) {
	root := realTree(t, true, []testapk.Entry{
		{Name: "classes.dex", Data: fakeDex, Stored: false},
		{Name: "lib/arm64-v8a/libmax.so", Data: make([]byte, 9000), Stored: false},
	})
	for _, mode := range [][]string{{"--check"}, {}} {
		out, errOut, code := run(t, root, apkInspector{}, mode...)
		if code != 4 {
			t.Fatalf("%v: exit %d, want 4\n%s%s", mode, code, out, errOut)
		}
		for _, want := range []string{"BLOCKED", "classes.dex (compressed dex in a privileged app)", "lib/arm64-v8a/libmax.so (compressed JNI library)",
			"preprocessed: true", "useLegacyPackaging = false", "zipalign -p 4"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", mode, want, out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "vendor/acme/preinstall")); err == nil {
		t.Fatal("a blocked patch wrote the module")
	}
	// Not privileged: compressed dex is allowed by Soong, the compressed JNI library is not.
	root = realTree(t, false, []testapk.Entry{{Name: "classes.dex", Data: fakeDex, Stored: false}})
	out, errOut, code := run(t, root, apkInspector{})
	if code != 0 {
		t.Fatalf("non-privileged, compressed dex only: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "classes.dex is compressed") {
		t.Errorf("no note about the compressed dex:\n%s", errOut)
	}
	bp, _ := os.ReadFile(filepath.Join(root, "vendor/acme/preinstall/Max/Android.bp"))
	if !strings.Contains(string(bp), "preprocessed: true") {
		t.Errorf("not declared preprocessed:\n%s", bp)
	}
	runSoongCheck(t, filepath.Join(root, "vendor/acme/preinstall/Max/Max.apk"), true, false)
}

// runSoongCheck runs build/soong/scripts/check_prebuilt_presigned_apk.py of the Soong checkout at
// PROVKIT_SOONG_DIR on the APK as provkit declared it; without a checkout it logs that it did not.
func runSoongCheck(t *testing.T, apk string, preprocessed, privileged bool) {
	t.Helper()
	dir := os.Getenv("PROVKIT_SOONG_DIR")
	if dir == "" {
		t.Log("PROVKIT_SOONG_DIR is not set: Soong's check_prebuilt_presigned_apk.py was not run")
		return
	}
	tools := testtool.Require(t, "python3", "aapt2", "zipalign")
	args := []string{filepath.Join(dir, "scripts/check_prebuilt_presigned_apk.py"), "--aapt2", tools[1], "--zipalign", tools[2]}
	if preprocessed {
		args = append(args, "--preprocessed")
	}
	if privileged {
		args = append(args, "--privileged")
	}
	args = append(args, apk, filepath.Join(t.TempDir(), "stamp"))
	if o, err := exec.Command(tools[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("Soong's check_prebuilt_presigned_apk.py rejects what provkit wrote: %v\n%s", err, o)
	}
}
