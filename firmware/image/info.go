package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/provkit/provkit/internal/safeopen"
	"io"
	"path/filepath"
	"sort"

	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/buildprop"
	"github.com/provkit/provkit/firmware/layout"
)

// AVB states.
const (
	AVBVerified = "verified" // every vbmeta is signed and verifies, every partition present matches
	AVBMismatch = "mismatch" // a partition no longer matches its vbmeta
	AVBFailed   = "failed"   // a vbmeta is unsigned, badly signed, or a descriptor could not be checked
	AVBNone     = "none"     // no vbmeta and no AVB footer
)

// AVBReport is the AVB verification of an input: every vbmeta found, verified against the
// partitions present.
type AVBReport struct {
	State string `json:"state"`
	// Roots are the vbmeta images verified: "vbmeta" when present (chained partitions are
	// verified under it), else each vbmeta image and each partition with an AVB footer.
	Roots []AVBRoot `json:"roots"`
	// Mismatched names every partition that no longer matches its vbmeta.
	Mismatched []string `json:"mismatched,omitempty"`
	// Problems are the findings in plain sentences, each prefixed by its vbmeta's partition.
	Problems []string `json:"problems,omitempty"`
}

// AVBRoot is one vbmeta verified.
type AVBRoot struct {
	Partition string      `json:"partition"`
	Source    string      `json:"source"`
	Footer    bool        `json:"footer"` // the vbmeta sits behind an AVB footer of the partition
	Report    *avb.Report `json:"report"`
}

// AVBOptions controls VerifyAVB.
type AVBOptions struct {
	// SkipHashtree skips recomputing dm-verity hash trees (they read whole partitions).
	SkipHashtree bool
}

// VerifyAVB verifies every vbmeta of the input against the active partitions present (loading
// deferred partitions as descriptors name them). The error is only for cancellation.
func (im *Image) VerifyAVB(ctx context.Context, opts AVBOptions) (*AVBReport, error) {
	rep := &AVBReport{Roots: []AVBRoot{}}
	lookup := func(name string) (io.ReaderAt, int64, bool) {
		p := im.Lookup(name)
		if p == nil {
			return nil, 0, false
		}
		r, size, err := p.ReaderAt()
		if err != nil {
			return nil, 0, false
		}
		return r, size, true
	}
	var roots []*Partition
	if p := im.Lookup("vbmeta"); p != nil {
		p.load()
		if p.Format == FormatVBMeta {
			roots = append(roots, p)
		}
	}
	covered := map[string]bool{}
	verify := func(p *Partition) error {
		r, size, err := p.ReaderAt()
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", p.Name, err))
			return nil
		}
		vb, err := avb.Open(r, size)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: reading AVB data of %s: %v", p.Name, p.Source, err))
			return nil
		}
		ar, err := vb.Verify(ctx, &avb.VerifyOptions{Partitions: lookup, SkipHashtree: opts.SkipHashtree})
		if err != nil {
			return err
		}
		covered[p.Name] = true
		markCovered(ar, covered)
		rep.Roots = append(rep.Roots, AVBRoot{Partition: p.Name, Source: p.Source, Footer: vb.Footer != nil, Report: ar})
		for _, m := range ar.Mismatched {
			rep.Mismatched = appendUnique(rep.Mismatched, m)
		}
		for _, c := range ar.Chained {
			for _, m := range c.Mismatched {
				rep.Mismatched = appendUnique(rep.Mismatched, m)
			}
		}
		for _, pr := range ar.Problems() {
			rep.Problems = append(rep.Problems, p.Name+": "+pr)
		}
		return nil
	}
	for _, p := range roots {
		if err := verify(p); err != nil {
			return nil, err
		}
	}
	// Every other vbmeta image or footed partition that no verified vbmeta covers stands alone.
	for _, p := range im.activeSorted() {
		p.load()
		if covered[p.Name] || (p.Format != FormatVBMeta && p.Footer == nil) {
			continue
		}
		if err := verify(p); err != nil {
			return nil, err
		}
	}
	switch {
	case len(rep.Roots) == 0 && len(rep.Problems) == 0:
		rep.State = AVBNone
	case len(rep.Mismatched) > 0:
		rep.State = AVBMismatch
	case len(rep.Problems) > 0:
		rep.State = AVBFailed
	default:
		rep.State = AVBVerified
	}
	return rep, nil
}

func markCovered(r *avb.Report, covered map[string]bool) {
	for _, d := range r.Descriptors {
		if d.Partition != "" {
			covered[d.Partition] = true
		}
	}
	for name, c := range r.Chained {
		covered[name] = true
		markCovered(c, covered)
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// activeSorted returns the active partitions that Lookup would choose, sorted by name.
func (im *Image) activeSorted() []*Partition {
	var out []*Partition
	for _, n := range im.Names() {
		if p := im.Lookup(n); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Build is what the build.prop files of the input say.
type Build struct {
	Fingerprint buildprop.Fingerprint `json:"fingerprint"`
	// Partitions holds each partition's own ro.<partition>.build.fingerprint.
	Partitions map[string]string `json:"partitionFingerprints,omitempty"`
	// Files are the build.prop files read, in init's order.
	Files []string `json:"files"`
	// Mounts say where each partition's files were found (system-as-root, nested partitions).
	Mounts   []layout.Mount `json:"mounts"`
	Problems []string       `json:"problems,omitempty"`
}

// Build reads the build.prop files of the loaded file systems. It returns nil when the input has
// no build.prop at all (a boot or vbmeta image, a vendor-only input still has one).
func (im *Image) Build() (*Build, error) {
	t := layout.New(im.FileSystems())
	set, problems, err := t.Props()
	if err != nil {
		return nil, err
	}
	if len(set.Files) == 0 {
		return nil, nil
	}
	return &Build{Fingerprint: set.DeviceFingerprint(), Partitions: set.PartitionFingerprints(), Files: set.Files, Mounts: t.Mounts, Problems: problems}, nil
}

// FileDigest is the SHA-256 of one input file.
type FileDigest struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Digests returns the SHA-256 of the input file, or of each partition image of an input
// directory. It reads every byte once, streaming.
func (im *Image) Digests(ctx context.Context) ([]FileDigest, error) {
	var files []string
	if im.Kind == KindDirectory {
		seen := map[string]bool{}
		for _, p := range im.Partitions {
			f := p.Source
			for i := 0; i < len(f); i++ {
				if f[i] == '!' {
					f = f[:i]
					break
				}
			}
			if !seen[f] {
				seen[f] = true
				files = append(files, filepath.Join(im.Path, f))
			}
		}
		sort.Strings(files)
	} else {
		files = []string{im.Path}
	}
	var out []FileDigest
	for _, f := range files {
		d, err := fileDigest(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func fileDigest(ctx context.Context, path string) (FileDigest, error) {
	f, err := safeopen.OpenImage(path)
	if err != nil {
		return FileDigest{}, fmt.Errorf("hashing image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return FileDigest{}, err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return FileDigest{}, fmt.Errorf("hashing %s at offset %d: %w", path, n, err)
		}
	}
	return FileDigest{File: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
