package apk

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectSuiteFiles(t *testing.T) {
	const rsa2048 = "fb5dbd3c669af9fc236c6991e6387b7f11ff0590997f22d0f5c74ff40e04fca8"
	tests := []struct {
		file, schemes, signer, scheme string
		lineage                       int
	}{
		{"v1-only-with-rsa-pkcs1-sha1-1.2.840.113549.1.1.1-2048.apk", "v1", rsa2048, "v1", 0},
		{"v2-only-with-ecdsa-sha256-p256.apk", "v2", "6a8b96e278e58f62cfe3584022cec1d0527fcb85a9e5d2e1694eb0405be5b599", "v2", 0},
		{"v31-rsa-2048_2-tgt-33-1-tgt-28.apk", "v1,v2,v3,v31", "681b0e56a796350c08647352a4db800cc44b2adc8f4c72fa350bd05d4d50264d", "v3.1", 2},
	}
	for _, tt := range tests {
		info, err := InspectFile(context.Background(), filepath.Join("testdata/apksig/files", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		s := info.Schemes
		for _, x := range []struct {
			on bool
			n  string
		}{{s.V1, "v1"}, {s.V2, "v2"}, {s.V3, "v3"}, {s.V31, "v31"}} {
			if x.on {
				got = append(got, x.n)
			}
		}
		if strings.Join(got, ",") != tt.schemes || len(info.Signers) == 0 || info.Signers[0].SHA256 != tt.signer ||
			info.Signers[0].Scheme != tt.scheme || len(info.Lineage) != tt.lineage || info.Package != "android.appsecurity.cts.tinyapp" {
			t.Errorf("%s: schemes %v, info %+v", tt.file, got, info)
		}
	}
}

func TestInspectMalformed(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("not a zip"), pseudoRandom(70000, 9)} {
		info, err := Inspect(context.Background(), bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("error for in-memory input: %v", err)
		}
		if len(info.Problems) == 0 || info.Problems[0].Code != "MALFORMED_APK" {
			t.Errorf("problems %+v", info.Problems)
		}
	}
}
