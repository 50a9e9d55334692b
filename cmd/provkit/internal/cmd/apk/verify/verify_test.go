package verify

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
)

const suite = "../../../../../../firmware/apk/testdata/apksig/files/"

func TestNewCmdVerifyFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(*Options) bool
	}{
		{[]string{"a.apk"}, "", func(o *Options) bool { return len(o.APKs) == 1 && o.MinSDK == 0 && !o.JSON }},
		{[]string{"--json", "-v", "--min-sdk-version", "24", "--max-sdk-version", "33", "a.apk", "b.apk"}, "",
			func(o *Options) bool {
				return o.JSON && o.Verbose && o.MinSDK == 24 && o.MaxSDK == 33 && len(o.APKs) == 2
			}},
		{[]string{"--policy", "p.yaml", "--v4-signature-file", "a.idsig", "a.apk"}, "",
			func(o *Options) bool { return o.PolicyPath == "p.yaml" && o.V4File == "a.idsig" }},
		{[]string{}, "needs at least 1 argument", nil},
		{[]string{"--min-sdk-version", "30", "--max-sdk-version", "29", "a.apk"}, "above --max-sdk-version", nil},
		{[]string{"--min-sdk-version", "0", "a.apk"}, "at least 1", nil},
		{[]string{"--max-sdk-version", "-3", "a.apk"}, "must be positive", nil},
		{[]string{"--v4-signature-file", "x", "a.apk", "b.apk"}, "exactly one APK", nil},
	}
	for _, tt := range tests {
		ios, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmdVerify(ios, func(_ context.Context, o *Options) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if tt.wantErr != "" {
			var fe *cmdutil.FlagError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
				t.Errorf("%v: error %v, want usage error containing %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got == nil || !tt.check(got) {
			t.Errorf("%v: err %v, options %+v", tt.args, err, got)
		}
	}
}

func TestVerifyRunJSONAndExitCodes(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	opts := &Options{IO: ios, APKs: []string{suite + "v2-only-with-ecdsa-sha256-p256.apk"}, JSON: true, MinSDK: 24}
	if err := verifyRun(context.Background(), opts); err != nil {
		t.Fatalf("verifyRun: %v (stderr %s)", err, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if doc["verified"] != true || doc["signers"].([]any)[0].(map[string]any)["keyAlgorithm"] != "EC" {
		t.Fatalf("document: %s", out)
	}

	// Without the SDK override the JAR signature is required: exit 4, still a document.
	ios, _, out, _ = iostreams.Test()
	opts = &Options{IO: ios, APKs: []string{suite + "v2-only-with-ecdsa-sha256-p256.apk", suite + "v3-only-empty.apk"}, JSON: true}
	err := verifyRun(context.Background(), opts)
	if cmdutil.ExitCode(err) != cmdutil.ExitNotCompliant {
		t.Fatalf("exit code %d, want %d", cmdutil.ExitCode(err), cmdutil.ExitNotCompliant)
	}
	var docs []map[string]any
	if err := json.Unmarshal(out.Bytes(), &docs); err != nil || len(docs) != 2 || docs[0]["verified"] != false {
		t.Fatalf("want an array of 2 documents: %v\n%s", err, out)
	}

	// An unreadable file: exit 1, the reason on stderr, nothing on stdout in text mode.
	ios, _, out, errOut = iostreams.Test()
	err = verifyRun(context.Background(), &Options{IO: ios, APKs: []string{"does-not-exist.apk"}})
	if cmdutil.ExitCode(err) != cmdutil.ExitError || out.Len() != 0 || !strings.Contains(errOut.String(), "does-not-exist.apk") {
		t.Fatalf("exit %d, stdout %q, stderr %q", cmdutil.ExitCode(err), out, errOut)
	}
}
