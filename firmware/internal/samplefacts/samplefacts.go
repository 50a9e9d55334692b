package samplefacts

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Fact is one row of facts.tsv.
type Fact struct {
	File, Key, Value string
	Line             int
}

// Dir returns the absolute path of firmware/testdata/samples.
func Dir() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..", "testdata", "samples")
}

// Path returns the absolute path of the sample named file.
func Path(file string) string { return filepath.Join(Dir(), filepath.FromSlash(file)) }

// Load reads facts.tsv and returns the facts of the files for which keep returns true, in file order.
func Load(keep func(file string) bool) ([]Fact, error) {
	return LoadFile(filepath.Join(Dir(), "facts.tsv"), keep)
}

// LoadFile reads a facts file in the format of facts.tsv (file, key, value, tab-separated; a first
// line "file	key	value" is a header) and returns the facts of the files for which keep returns
// true, in file order. Package sparse keeps its own samples' facts in such a file.
func LoadFile(path string, keep func(file string) bool) ([]Fact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening facts: %w", err)
	}
	defer f.Close()
	var facts []Fact
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 && sc.Text() == "file\tkey\tvalue" {
			continue
		}
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("reading %s line %d: want 3 tab-separated columns", path, line)
		}
		if keep(parts[0]) {
			facts = append(facts, Fact{File: parts[0], Key: parts[1], Value: parts[2], Line: line})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return facts, nil
}

// FilesWith returns the samples of facts.tsv that have at least one fact for which match returns
// true: the files a format package owns (every file with an "avb." key, say). Their other facts
// are then loaded with Load.
func FilesWith(match func(Fact) bool) (map[string]bool, error) {
	all, err := Load(func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	for _, f := range all {
		if match(f) {
			files[f.File] = true
		}
	}
	return files, nil
}

// Provenance checks the provenance keys every sample has. It returns handled=false for any other key.
// size_bytes, sha256 and git_blob_sha1 are recomputed from the file; source_repo, source_commit,
// source_path, container_path and license must appear in the row of testdata/samples/README.md that
// names the file, so that the copied file's origin and licence stay documented.
func Provenance(fact Fact) (handled bool, err error) {
	switch fact.Key {
	case "size_bytes", "sha256", "git_blob_sha1":
		data, err := os.ReadFile(Path(fact.File))
		if err != nil {
			return true, err
		}
		var got string
		switch fact.Key {
		case "size_bytes":
			got = strconv.Itoa(len(data))
		case "sha256":
			sum := sha256.Sum256(data)
			got = hex.EncodeToString(sum[:])
		case "git_blob_sha1":
			h := sha1.New()
			fmt.Fprintf(h, "blob %d\x00", len(data))
			h.Write(data)
			got = hex.EncodeToString(h.Sum(nil))
		}
		if got != fact.Value {
			return true, fmt.Errorf("%s: got %s, want %s", fact.Key, got, fact.Value)
		}
		return true, nil
	case "source_repo", "source_commit", "source_path", "container_path", "license", "container_git_blob_sha1":
		readme, err := os.ReadFile(filepath.Join(Dir(), "README.md"))
		if err != nil {
			return true, err
		}
		want := fact.Value
		if fact.Key == "source_commit" || fact.Key == "container_git_blob_sha1" {
			want = want[:min(12, len(want))]
		}
		for _, l := range strings.Split(string(readme), "\n") {
			if strings.HasPrefix(l, "| `"+fact.File+"` |") {
				if !strings.Contains(l, want) {
					return true, fmt.Errorf("README.md row of %s does not name its %s %q", fact.File, fact.Key, want)
				}
				return true, nil
			}
		}
		return true, fmt.Errorf("README.md has no row for %s", fact.File)
	}
	return false, nil
}
