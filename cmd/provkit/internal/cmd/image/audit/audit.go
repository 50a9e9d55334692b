package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/firmware/image"
	"github.com/provkit/provkit/firmware/layout"
	"github.com/provkit/provkit/manifests/audit"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

// Options holds what "image audit" needs.
type Options struct {
	IO         *iostreams.IOStreams
	Image      string
	PolicyPath string
	Partition  string
	Slot       string
	JSON       bool
	Digest     bool
	Jobs       int
	Attest     attestflag.Flags
}

// NewCmdAudit returns the command. runF replaces auditRun in tests.
func NewCmdAudit(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "audit --policy <file> <image> [--partition <name>] [--json]",
		Short: "Check a firmware image against a preinstall policy",
		Long: `Check a firmware image against a preinstall policy, offline, reading only what the check
needs: for each app of the policy, the APK the platform would use is found by the package name
in its manifest (every APK of the app and priv-app directories of system, vendor, odm, oem,
product and system_ext is indexed, in PackageManager's scan order), verified with the same
engine as 'provkit apk verify', and its placement and configuration are checked.

<image> is a partition image (raw or sparse, ext4 or EROFS), a super image, a factory or image
zip, an OTA zip or payload.bin, or a directory of partition images (system.img, product.img,
super.img, ...). Each image is mapped to the partition its name says; a single image takes
--partition or its file name. Deflated images in a zip are decompressed once each (to memory
or an unlinked temporary file); everything else is read in place.

Rules (IDs are stable): app-present, system-app, privileged, signature-verified,
signer-pinned, min-version-code, privapp-allowlisted, permissions-pregranted,
installed-for-users, not-overridden for each app; fingerprint-allowed for the image.

With --json, stdout is one document: image {path, kind, slot, partitions used, digests},
policy, compliant, fingerprint {value, source, derived}, checks, apps [{package, compliant,
found, partition, path, apkSha256, apkSize, signers, lineage, versionCode, privileged,
copies, checks [{rule, pass, detail}]}], platform, mounts, problems. --digest adds the SHA-256
of the input file(s) (it reads every byte; computed alongside the audit).

Example:
  provkit image audit --policy policy.yaml system.img
  provkit image audit --policy policy.yaml --json --digest oriole-factory.zip
  provkit image audit --policy policy.yaml --partition product fs.img
  provkit image audit --policy policy.yaml out/target/product/acme/` +
			cmdutil.ExitStatus(
				"0    compliant",
				"1    error: unreadable policy, unreadable or corrupt image",
				"2    usage: bad flags or arguments",
				"4    not compliant"),
		Args: cmdutil.ExactArgs(1, "<image>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Image = args[0]
			if opts.PolicyPath == "" {
				return cmdutil.FlagErrorf("--policy <file> is required; see '%s --help'", cmd.CommandPath())
			}
			if opts.Slot != "" && opts.Slot != "a" && opts.Slot != "b" {
				return cmdutil.FlagErrorf("--slot %q: want a or b", opts.Slot)
			}
			if opts.Jobs <= 0 {
				return cmdutil.FlagErrorf("--jobs must be at least 1, got %d", opts.Jobs)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if err := opts.Attest.Validate(); err != nil {
				return err
			}
			return image.Explain(auditRun(cmd.Context(), opts))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.PolicyPath, "policy", "", "the preinstall policy `<file>` (YAML)")
	f.StringVar(&opts.Partition, "partition", "", "partition `<name>` of a single partition image (default: from its file name)")
	f.StringVar(&opts.Slot, "slot", "", "A/B slot `{a|b}` (default: the slot whose partitions hold data)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document with the evidence")
	f.BoolVar(&opts.Digest, "digest", false, "add the SHA-256 of the input file(s) to the evidence (reads every byte)")
	f.IntVar(&opts.Jobs, "jobs", 4, "APKs read at once (`<n>`)")
	opts.Attest.Register(cmd)
	return cmd
}

// ImageEvidence describes the input.
type ImageEvidence struct {
	Path       string             `json:"path"`
	Kind       image.Kind         `json:"kind"`
	Size       int64              `json:"size,omitempty"`
	Slot       string             `json:"slot,omitempty"`
	Partitions []PartitionUsed    `json:"partitions"`
	Digests    []image.FileDigest `json:"digests,omitempty"`
	Notes      []string           `json:"notes,omitempty"`
}

// PartitionUsed is a partition whose file system the audit read.
type PartitionUsed struct {
	Name   string       `json:"name"`
	Source string       `json:"source"`
	Layers []string     `json:"layers,omitempty"`
	Format image.Format `json:"format"`
	Size   int64        `json:"size"`
}

// Document is the JSON output.
type Document struct {
	Image ImageEvidence `json:"image"`
	*audit.Report
}

func auditRun(ctx context.Context, opts *Options) error {
	pol, err := policy.Load(opts.PolicyPath)
	if err != nil {
		return err
	}
	im, err := image.Open(ctx, opts.Image, &image.Options{Partition: opts.Partition, Slot: opts.Slot})
	if err != nil {
		return err
	}
	defer im.Close()
	type digestResult struct {
		d   []image.FileDigest
		err error
	}
	var digests chan digestResult
	if opts.Digest || opts.Attest.Enabled() {
		digests = make(chan digestResult, 1)
		go func() {
			d, err := im.Digests(ctx)
			digests <- digestResult{d, err}
		}()
	}
	parts, used, err := fileSystems(im)
	if err != nil {
		return err
	}
	rep, err := audit.Run(ctx, pol, parts, audit.Options{Jobs: opts.Jobs})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("auditing %s: %w", opts.Image, err)
	}
	doc := Document{Report: rep, Image: ImageEvidence{Path: im.Path, Kind: im.Kind, Size: im.Size, Slot: im.Slot, Partitions: used, Notes: im.Notes}}
	if digests != nil {
		res := <-digests
		if res.err != nil {
			return res.err
		}
		doc.Image.Digests = res.d
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	} else if err := printText(termtext.NewWriter(opts.IO.Out), &doc); err != nil {
		return err
	}
	if opts.Attest.Enabled() {
		if err := attest(opts, pol, &doc); err != nil {
			return err
		}
	}
	if !rep.Compliant {
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	return nil
}

// attest writes the signed attestation: the subjects are the input file(s) with their SHA-256.
func attest(opts *Options, pol *policy.Policy, doc *Document) error {
	c, err := evidence.NewCompliance(evidence.KindImageAudit, pol)
	if err != nil {
		return err
	}
	c.Verdict = evidence.VerdictNotCompliant
	if doc.Compliant {
		c.Verdict = evidence.VerdictCompliant
	}
	c.Rules = evidence.Rules("image", doc.Checks)
	for _, a := range doc.Apps {
		c.Rules = append(c.Rules, evidence.Rules(a.Package, a.Checks)...)
	}
	st := &evidence.Statement{Predicate: c}
	for _, d := range doc.Image.Digests {
		st.Subject = append(st.Subject, evidence.Subject{Name: d.File, Digest: map[string]string{"sha256": d.SHA256}})
	}
	return opts.Attest.Write(opts.IO.ErrOut, st, doc)
}

// fileSystems loads the partitions a device mounts read-only and returns their file systems. A
// partition the audit needs that cannot be read is an error: judging without it would be wrong.
func fileSystems(im *image.Image) (map[string]fs.FS, []PartitionUsed, error) {
	if err := im.Load(layout.MountOrder...); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil, err
		}
	}
	parts := map[string]fs.FS{}
	var used []PartitionUsed
	var problems []string
	for _, name := range layout.MountOrder {
		p := im.Lookup(name)
		if p == nil || p.Format == image.FormatEmpty {
			continue
		}
		fsys, err := p.FS()
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		parts[name] = fsys
		used = append(used, PartitionUsed{Name: name, Source: p.Source, Layers: p.Layers, Format: p.Format, Size: p.Size})
	}
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("auditing %s: %s", im.Path, strings.Join(problems, "; "))
	}
	if len(parts) == 0 {
		hint := ""
		if im.Kind == image.KindPartition {
			hint = fmt.Sprintf("; name the partition this image holds with --partition {%s}", strings.Join(policy.Partitions, "|"))
		}
		return nil, nil, fmt.Errorf("auditing %s: no system, system_ext, product, vendor or odm file system (partitions: %s)%s", im.Path, strings.Join(im.Names(), ", "), hint)
	}
	return parts, used, nil
}

func printText(w io.Writer, d *Document) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	r := d.Report
	name := r.PolicyName
	p("Policy:       %s (%s)", r.Policy, name)
	var parts []string
	for _, u := range d.Image.Partitions {
		parts = append(parts, u.Name+"="+u.Source)
	}
	p("Image:        %s (%s; %s)", d.Image.Path, d.Image.Kind, strings.Join(parts, ", "))
	for _, dg := range d.Image.Digests {
		p("SHA-256:      %s  %s", dg.SHA256, dg.File)
	}
	if r.Fingerprint != nil {
		p("Fingerprint:  %s", r.Fingerprint.Value)
	} else {
		p("Fingerprint:  unknown (no build.prop)")
	}
	for _, c := range r.Checks {
		p("  %s %-24s %s", verdict(c.Pass), c.Rule, c.Detail)
	}
	for _, a := range r.Apps {
		p("")
		state := "COMPLIANT"
		if !a.Compliant {
			state = "NOT COMPLIANT"
		}
		p("%s: %s", a.Package, state)
		if a.Found {
			signer := strings.Join(a.Signers, ", ")
			if signer == "" {
				signer = "none verified"
			}
			p("  APK:        %s (%s), versionCode %d", a.Path, a.Partition, a.VersionCode)
			p("  SHA-256:    %s (%d bytes)", a.SHA256, a.Size)
			p("  Signer:     %s", signer)
		}
		for _, c := range a.Checks {
			p("  %s %-24s %s", verdict(c.Pass), c.Rule, c.Detail)
		}
	}
	for _, pr := range r.Problems {
		p("Problem:      %s", pr)
	}
	for _, n := range d.Image.Notes {
		p("Note:         %s", n)
	}
	p("")
	if r.Compliant {
		p("Verdict:      COMPLIANT")
	} else {
		n := 0
		for _, c := range r.Checks {
			if !c.Pass {
				n++
			}
		}
		for _, a := range r.Apps {
			n += len(policy.Failed(a.Checks))
		}
		p("Verdict:      NOT COMPLIANT (%s failed)", cmdutil.Count(n, "rule", "rules"))
	}
	return nil
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// FileSystems is fileSystems for other commands that audit firmware the same way (provkit flash).
func FileSystems(im *image.Image) (map[string]fs.FS, []PartitionUsed, error) { return fileSystems(im) }
