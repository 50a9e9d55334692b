package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// suiteDir holds the apksig conformance APKs (see firmware/apk/testdata/apksig/README.md).
const suiteDir = "../../firmware/apk/testdata/apksig/files"

// cmdSuiteAPK copies APKs of the apksig suite into the script's work directory:
// "suiteapk v2-only-with-rsa-pkcs1-sha256-2048.apk [more...]".
func cmdSuiteAPK(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: suiteapk <name>...")
	}
	for _, a := range args {
		data, err := os.ReadFile(filepath.Join(suiteDir, a))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(a), data, 0o644))
	}
}

// cmdFlipByte flips the lowest bit of the byte at an offset (negative: from the end):
// "flipbyte app.apk 1000".
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte <file> <offset>")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(data)
	}
	if off < 0 || off >= len(data) {
		ts.Fatalf("flipbyte: offset %s outside %d bytes", args[1], len(data))
	}
	data[off] ^= 1
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}

// cmdTruncate cuts a file to a size: "truncate app.apk 100".
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate <file> <size>")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}
