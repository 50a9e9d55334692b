package info

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/avb"
	"github.com/provkit/provkit/firmware/factoryzip"
	"github.com/provkit/provkit/firmware/image"
)

// Options holds what "image info" needs.
type Options struct {
	IO           *iostreams.IOStreams
	Image        string
	JSON         bool
	Partition    string
	Slot         string
	SkipHashtree bool
	NoAVB        bool
	Digest       bool
}

// NewCmdInfo returns the command. runF replaces infoRun in tests.
func NewCmdInfo(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "info <image> [--json]",
		Short: "Show a firmware image's partitions, build fingerprint and AVB state",
		Long: `Show what a firmware image is made of: the kind of input, each partition with its format
(ext4, erofs, super, vbmeta, boot, ...), size and where its bytes come from (through which
containers: zip entry, payload, super, sparse); the build fingerprint from the build.prop files
in init's order (ro.build.fingerprint, or derived from its parts as init does, and each
partition's ro.<partition>.build.fingerprint); and the AVB state: every vbmeta verified against
the partitions present, naming those that no longer match.

<image> is a partition image (raw or sparse), a super image, a factory or image zip, an OTA zip
or payload.bin, a vbmeta or boot image, or a directory of partition images. Deflated images in
a zip are decompressed once (to memory or an unlinked temporary file); everything else is read
in place. Verifying dm-verity hash trees reads whole partitions: --skip-hashtree skips that.

With --json, stdout is one document: path, kind, size, slot, partitions [{name, slot, active,
source, layers, format, size, detail, avbFooter, error}], build {fingerprint {value, source,
derived}, partitionFingerprints, files, mounts, problems}, avb {state, roots, mismatched,
problems}, digests (with --digest), notes, androidInfo, otaMetadata.

Example:
  provkit image info system.img
  provkit image info --json image-oriole-up1a.231005.007.zip
  provkit image info --skip-hashtree super.img
  provkit image info --digest ota.zip` +
			cmdutil.ExitStatus(
				"0    the image was read (AVB mismatches are reported, not errors)",
				"1    error: unreadable or corrupt image or partition",
				"2    usage: bad flags or arguments"),
		Args: cmdutil.ExactArgs(1, "<image>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Image = args[0]
			if opts.Slot != "" && opts.Slot != "a" && opts.Slot != "b" {
				return cmdutil.FlagErrorf("--slot %q: want a or b", opts.Slot)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			err := infoRun(cmd.Context(), opts)
			if errors.Is(err, image.ErrNotFirmware) && opts.Partition == "" {
				if st, serr := os.Stat(opts.Image); serr == nil && !st.IsDir() {
					err = fmt.Errorf("%w; if it is a raw partition image, name its partition with --partition <name>", err)
				}
			}
			return image.Explain(err)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document")
	f.StringVar(&opts.Partition, "partition", "", "partition `<name>` of a single partition image (default: from its file name)")
	f.StringVar(&opts.Slot, "slot", "", "A/B slot `{a|b}` (default: the slot whose partitions hold data)")
	f.BoolVar(&opts.SkipHashtree, "skip-hashtree", false, "do not recompute dm-verity hash trees (they read whole partitions)")
	f.BoolVar(&opts.NoAVB, "no-avb", false, "do not verify AVB at all")
	f.BoolVar(&opts.Digest, "digest", false, "also print the SHA-256 of the input file(s) (reads every byte)")
	return cmd
}

// PartitionInfo is one partition in the report.
type PartitionInfo struct {
	*image.Partition
	Error string `json:"error,omitempty"`
	// Unsupported is true when the error only says provkit cannot read the content.
	Unsupported bool `json:"unsupported,omitempty"`
}

// Report is the JSON document.
type Report struct {
	Path        string                  `json:"path"`
	Kind        image.Kind              `json:"kind"`
	Size        int64                   `json:"size"`
	Slot        string                  `json:"slot,omitempty"`
	Partitions  []PartitionInfo         `json:"partitions"`
	Build       *image.Build            `json:"build,omitempty"`
	AVB         *image.AVBReport        `json:"avb,omitempty"`
	Digests     []image.FileDigest      `json:"digests,omitempty"`
	Notes       []string                `json:"notes,omitempty"`
	AndroidInfo *factoryzip.AndroidInfo `json:"androidInfo,omitempty"`
	OTAMetadata map[string]string       `json:"otaMetadata,omitempty"`
}

func infoRun(ctx context.Context, opts *Options) error {
	im, err := image.Open(ctx, opts.Image, &image.Options{Partition: opts.Partition, Slot: opts.Slot})
	if err != nil {
		return err
	}
	defer im.Close()
	if err := im.Load(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rep := Report{Path: im.Path, Kind: im.Kind, Size: im.Size, Slot: im.Slot, AndroidInfo: im.AndroidInfo, OTAMetadata: im.OTAMetadata}
	failed := 0
	for _, p := range im.Partitions {
		pi := PartitionInfo{Partition: p}
		if p.Err != nil {
			pi.Error = p.Err.Error()
			pi.Unsupported = image.Unsupported(p.Err)
			if !pi.Unsupported {
				failed++
			}
		}
		rep.Partitions = append(rep.Partitions, pi)
	}
	if rep.Build, err = im.Build(); err != nil {
		return err
	}
	if !opts.NoAVB {
		if rep.AVB, err = im.VerifyAVB(ctx, image.AVBOptions{SkipHashtree: opts.SkipHashtree}); err != nil {
			return err
		}
	}
	if opts.Digest {
		if rep.Digests, err = im.Digests(ctx); err != nil {
			return err
		}
	}
	rep.Notes = im.Notes
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	} else if err := printText(termtext.NewWriter(opts.IO.Out), &rep); err != nil {
		return err
	}
	if failed > 0 {
		for _, p := range rep.Partitions {
			if p.Error != "" && !p.Unsupported {
				fmt.Fprintf(opts.IO.ErrOut, "provkit: %v\n", image.Explain(p.Err))
			}
		}
		return cmdutil.Silent(cmdutil.ExitError)
	}
	return nil
}

func printText(w io.Writer, r *Report) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	kind := string(r.Kind)
	if r.Size > 0 {
		kind += fmt.Sprintf(", %d bytes", r.Size)
	}
	p("Image:        %s (%s)", r.Path, kind)
	if r.Slot != "" {
		p("Slot:         %s", r.Slot)
	}
	if r.AndroidInfo != nil && r.AndroidInfo.Board() != "" {
		p("Board:        %s", r.AndroidInfo.Board())
	}
	if v := r.OTAMetadata["post-build"]; v != "" {
		p("OTA target:   %s", v)
	}
	if b := r.Build; b != nil {
		how := b.Fingerprint.Source
		if b.Fingerprint.Derived {
			how = "derived from ro.product.* and ro.build.* as init does"
			if len(b.Fingerprint.Unknown) > 0 {
				how += "; missing " + strings.Join(b.Fingerprint.Unknown, ", ")
			}
		}
		p("Fingerprint:  %s (%s)", b.Fingerprint.Value, how)
		for _, n := range sortedKeys(b.Partitions) {
			p("  %-11s %s", n+":", b.Partitions[n])
		}
	} else {
		p("Fingerprint:  none (no build.prop in a readable partition)")
	}
	p("")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tSLOT\tFORMAT\tSIZE\tSOURCE\tDETAIL")
	for _, pi := range r.Partitions {
		name := pi.Name
		if !pi.Active {
			name += " (inactive)"
		}
		slot := pi.Slot
		if slot == "" {
			slot = "-"
		}
		format := string(pi.Format)
		if pi.Pending {
			format = "(not read)"
		}
		if format == "" {
			format = "-"
		}
		src := pi.Source
		if len(pi.Layers) > 0 {
			src += " [" + strings.Join(pi.Layers, ", ") + "]"
		}
		detail := pi.Detail
		if pi.Footer != nil {
			detail = strings.TrimPrefix(detail+"; AVB footer", "; ")
		}
		if pi.Error != "" {
			detail = strings.TrimPrefix(detail+"; ERROR: "+pi.Error, "; ")
			if pi.Unsupported {
				detail = strings.Replace(detail, "ERROR: ", "not readable: ", 1)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", name, slot, format, pi.Size, src, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a := r.AVB; a != nil {
		p("")
		switch a.State {
		case image.AVBNone:
			p("AVB:          none (no vbmeta image, no AVB footer)")
		case image.AVBVerified:
			p("AVB:          verified: every vbmeta is signed and every partition present matches it")
		case image.AVBMismatch:
			p("AVB:          MISMATCH: no longer matching their vbmeta: %s", strings.Join(a.Mismatched, ", "))
		default:
			p("AVB:          FAILED: see the problems below")
		}
		for _, root := range a.Roots {
			printAVB(p, root.Partition, root.Source, root.Report, "  ")
		}
		for _, pr := range a.Problems {
			p("  problem: %s", pr)
		}
	}
	for _, d := range r.Digests {
		p("SHA-256:      %s  %s (%d bytes)", d.SHA256, d.File, d.Size)
	}
	if b := r.Build; b != nil {
		for _, pr := range b.Problems {
			p("build.prop:   %s", pr)
		}
	}
	for _, n := range r.Notes {
		p("Note:         %s", n)
	}
	return nil
}

func printAVB(p func(string, ...any), name, source string, r *avb.Report, indent string) {
	s := r.Signature
	sig := "signature verifies"
	switch {
	case !s.Signed:
		sig = "NOT SIGNED"
	case !s.SignatureOK || !s.AuthHashOK:
		sig = "SIGNATURE DOES NOT VERIFY: " + s.Error
	}
	key := ""
	if s.KeySHA256 != "" {
		key = ", key sha256 " + s.KeySHA256
	}
	p("%s%s (%s): %s%s, %s, rollback index %d", indent, name, source, s.Algorithm, key, sig, r.RollbackIndex)
	for _, d := range r.Descriptors {
		if d.Status == avb.StatusInfo {
			continue
		}
		line := fmt.Sprintf("%s  %s %s: %s", indent, d.Kind, orSelf(d.Partition), d.Status)
		if d.Detail != "" {
			line += " (" + d.Detail + ")"
		}
		p("%s", line)
	}
	for _, n := range sortedKeys(r.Chained) {
		printAVB(p, n, "chained", r.Chained[n], indent+"  ")
	}
}

func orSelf(s string) string {
	if s == "" {
		return "(this image)"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
