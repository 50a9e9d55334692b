package patch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/provkit/provkit/internal/termtext"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provkit/provkit/cmd/provkit/internal/attestflag"
	"github.com/provkit/provkit/cmd/provkit/internal/cmdutil"
	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/manifests/aosp"
	"github.com/provkit/provkit/manifests/evidence"
	"github.com/provkit/provkit/manifests/policy"
)

// Options are the parsed flags of provkit patch.
type Options struct {
	IO *iostreams.IOStreams

	PolicyPath string
	Tree       string
	Product    string
	Format     string
	Dir        string
	Vendor     string
	Placement  string
	Vars       []string
	Scan       []string
	DexPreopt  bool
	Preprocess bool
	APILevel   int

	Verbose bool

	DryRun bool
	Check  bool
	Attest attestflag.Flags
	Revert bool
	JSON   bool

	// Inspector establishes APK facts; nil means the firmware/apk adapter.
	Inspector aosp.Inspector
}

// NewCmdPatch returns the patch command. runF replaces patchRun in tests.
func NewCmdPatch(ios *iostreams.IOStreams, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: ios}
	cmd := &cobra.Command{
		Use:   "patch --policy <file> --tree <aosp-root> [--product <makefile|name>] [flags]",
		Short: "Put the policy's apps into an AOSP build tree, reviewably and idempotently",
		Long: `Patch an OEM's AOSP build tree so that every app of the policy ships in the system image.

For each app, the APK is verified against the policy first (signature, pinned signer, minimum
versionCode); an APK that fails is never copied. provkit then writes a module directory (default
vendor/<vendor>/preinstall/<Module>/, which in a repo checkout belongs to no git project: provkit
says so; --module-dir puts it inside a project you own) with the APK, an Android.bp
(android_app_import) or Android.mk (BUILD_PREBUILT), and the permission XMLs on the app's partition: privapp-permissions
for a privileged app, default-permissions for pre-granted runtime permissions, and a sysconfig
preinstalled-packages file. The module is added to the product's PRODUCT_PACKAGES, through a new
preinstall.mk inherited by the product makefile (--placement inherit, the default) or as a line of
an existing "PRODUCT_PACKAGES +=" list (--placement append).

The product is --product, else TARGET_PRODUCT as lunch set it. The APK decides how it is declared:
an APK that is zipaligned with uncompressed JNI libraries (and dex, when privileged) is installed
byte for byte (preprocessed: true); one that is not, and that Soong or Make would have to rewrite,
is a blocker naming the entries the app's vendor must fix.

Before writing, provkit reports what would defeat the app, with file:line: a module that overrides
it, another module shipping the same package, a later "PRODUCT_PACKAGES :=" that drops it,
permission XMLs for the package on another partition, privileged permissions the policy neither
grants nor denies. Writing is all or nothing; a second run changes nothing; --revert removes exactly
what provkit added.

Modes:
  (none)     apply the patch and list the files changed
  --dry-run  print the patch as a unified diff, write nothing
  --check    write nothing; exit 4 when the tree is not compliant, listing why
  --revert   remove what provkit added (combine with --dry-run or --check)
  --json     print one JSON document instead of text

Example:
  provkit patch --policy mandate.yaml --tree ~/lineage --product lineage_foo --dry-run
  provkit patch --policy mandate.yaml --tree ~/lineage --product device/acme/foo/lineage_foo.mk
  provkit patch --policy mandate.yaml --tree ~/lineage --check --json
  provkit patch --policy mandate.yaml --tree ~/lineage --revert
  provkit patch --policy mandate.yaml --tree ~/lineage --module-dir device/acme/foo/preinstall
  source build/envsetup.sh && lunch lineage_foo-ap2a-user && provkit patch --policy mandate.yaml --tree . --check
` +
			cmdutil.ExitStatus(
				"0    patched, nothing to change, or compliant (--check)",
				"1    error: unreadable policy, APK or tree, or a file provkit cannot parse (file:line)",
				"2    usage: bad flags",
				"4    an APK fails the policy, a conflict blocks the patch, or (--check) the tree is not compliant"),
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.PolicyPath == "" || opts.Tree == "" {
				return cmdutil.FlagErrorf("--policy <file> and --tree <aosp-root> are required; see '%s --help'", c.CommandPath())
			}
			if opts.DryRun && opts.Check {
				return cmdutil.FlagErrorf("--dry-run and --check cannot be combined: --check already writes nothing")
			}
			if opts.Attest.Enabled() && !opts.Check {
				return cmdutil.FlagErrorf("--attest is for --check: it attests whether the tree is compliant")
			}
			if opts.Format != "" && opts.Format != aosp.FormatBp && opts.Format != aosp.FormatMk {
				return cmdutil.FlagErrorf("--format %q: use bp or mk", opts.Format)
			}
			if opts.Placement != "" && opts.Placement != aosp.PlaceInherit && opts.Placement != aosp.PlaceAppend {
				return cmdutil.FlagErrorf("--placement %q: use inherit or append", opts.Placement)
			}
			for _, v := range opts.Vars {
				if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
					return cmdutil.FlagErrorf("--var %q: use NAME=VALUE", v)
				}
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			if err := opts.Attest.Validate(); err != nil {
				return err
			}
			return patchRun(c.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.PolicyPath, "policy", "", "the policy `<file>` (YAML)")
	f.StringVar(&opts.Tree, "tree", "", "the AOSP tree's root `<dir>`")
	f.StringVar(&opts.Product, "product", "", "product `<makefile|name>`: a makefile path relative to the tree, or a product name; default: $TARGET_PRODUCT (set by lunch), else the only one declared")
	f.StringVar(&opts.Format, "format", "", "module definition format `{bp|mk}`; default: detected from the tree")
	f.StringVar(&opts.Dir, "dir", "", "parent `<dir>` (relative to the tree) of the module directories; default vendor/<vendor>/preinstall")
	f.StringVar(&opts.Dir, "module-dir", "", "same as --dir: put the module directories under `<dir>`, e.g. inside a git project you own")
	f.StringVar(&opts.Vendor, "vendor", "", "vendor `<name>` for the default --dir; default: from the product makefile's path")
	f.StringVar(&opts.Placement, "placement", "", "how the module joins PRODUCT_PACKAGES `{inherit|append}`; default inherit")
	f.StringArrayVar(&opts.Vars, "var", nil, "preset a make variable `<NAME=VALUE>` to decide conditions (repeatable)")
	f.StringArrayVar(&opts.Scan, "scan", nil, "look for conflicts only under `<dir>` (repeatable); default device, vendor, product")
	f.BoolVar(&opts.DexPreopt, "dex-preopt", false, "keep dex pre-optimisation on for the app")
	f.BoolVar(&opts.Preprocess, "preprocessed", false, "require the APK to be installed byte for byte even below targetSdk 30 (default: decided from the APK: preprocessed when aligned with uncompressed JNI libraries and, if privileged, dex)")
	f.IntVar(&opts.APILevel, "api-level", 0, "Android API `<level>` (29-35) whose built-in privileged permission table checks a tree without frameworks/base; default: the tree's PLATFORM_SDK_VERSION, else the newest table")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the unified diff, write nothing")
	f.BoolVar(&opts.Check, "check", false, "write nothing; exit 4 when the tree is not compliant")
	opts.Attest.Register(cmd)
	f.BoolVar(&opts.Revert, "revert", false, "remove what provkit added")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "list every product list entry provkit cannot resolve, instead of a count")
	return cmd
}

// report is the --json document.
type report struct {
	Mode      string           `json:"mode"`
	Tree      string           `json:"tree"`
	Product   string           `json:"product"`
	Format    string           `json:"format"`
	Placement string           `json:"placement"`
	Dir       string           `json:"dir"`
	Apps      []aosp.AppReport `json:"apps"`
	Changes   []aosp.Change    `json:"changes"`
	Blockers  []aosp.Finding   `json:"blockers"`
	Notes     []string         `json:"notes"`
	// PermissionSource says where the list of privileged permissions came from.
	PermissionSource string `json:"permissionSource,omitempty"`
	Compliant        bool   `json:"compliant"`
	Applied          bool   `json:"applied"`
	Diff             string `json:"diff,omitempty"`
}

func patchRun(ctx context.Context, opts *Options) error {
	pol, err := policy.Load(opts.PolicyPath)
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for _, v := range opts.Vars {
		k, val, _ := strings.Cut(v, "=")
		vars[k] = val
	}
	// What lunch left in the environment decides what the build would: the product, and the
	// variant its conditions test. Flags win.
	product := opts.Product
	var envNotes []string
	if product == "" {
		if env := os.Getenv("TARGET_PRODUCT"); env != "" {
			product = env
			envNotes = append(envNotes, fmt.Sprintf("product %s from TARGET_PRODUCT (set by lunch); --product overrides it", env))
		}
	}
	if _, set := vars["TARGET_BUILD_VARIANT"]; !set {
		if env := os.Getenv("TARGET_BUILD_VARIANT"); env != "" {
			vars["TARGET_BUILD_VARIANT"] = env
			envNotes = append(envNotes, fmt.Sprintf("TARGET_BUILD_VARIANT=%s from the environment; --var TARGET_BUILD_VARIANT=... overrides it", env))
		}
	}
	ins := opts.Inspector
	if ins == nil {
		ins = newInspector()
	}
	plan, err := aosp.Prepare(ctx, aosp.Options{
		Policy: pol, Tree: opts.Tree, Product: product, Format: opts.Format, Dir: opts.Dir,
		Vendor: opts.Vendor, Placement: opts.Placement, Vars: vars, DexPreopt: opts.DexPreopt,
		Preprocessed: opts.Preprocess, ScanDirs: opts.Scan, Revert: opts.Revert, Verbose: opts.Verbose, Inspector: ins,
		APILevel: opts.APILevel,
	})
	if err != nil {
		if errors.Is(err, aosp.ErrBadOptions) {
			return &cmdutil.FlagError{Err: err}
		}
		return err
	}
	plan.Notes = append(envNotes, plan.Notes...)
	// Staging files a killed run left behind: removed by a run that writes, reported by one that
	// does not (--check and --dry-run write nothing).
	if opts.Check || opts.DryRun {
		for _, f := range plan.Stale() {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s was left by an interrupted provkit run; the next apply or --revert removes it", f))
		}
	} else {
		removed, kept := plan.RemoveStale()
		for _, f := range removed {
			plan.Notes = append(plan.Notes, fmt.Sprintf("removed %s, a staging file left by an interrupted provkit run", f))
		}
		for _, f := range kept {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s is an original that an interrupted provkit run moved aside: if a file next to it is missing, it is that file (restore it with mv); otherwise delete it", f))
		}
	}
	mode := "apply"
	switch {
	case opts.Check:
		mode = "check"
	case opts.DryRun:
		mode = "dry-run"
	}
	if opts.Revert {
		mode = "revert-" + mode
		mode = strings.TrimSuffix(mode, "-apply")
	}
	rep := report{Mode: mode, Tree: plan.Tree, Product: plan.Product, Format: plan.Format, Placement: plan.Placement,
		Dir: plan.Dir, Apps: plan.Apps, Changes: plan.Changes, Blockers: plan.Blockers, Notes: plan.Notes, PermissionSource: plan.PermissionSource, Compliant: plan.Compliant()}
	if rep.Changes == nil {
		rep.Changes = []aosp.Change{}
	}
	if rep.Blockers == nil {
		rep.Blockers = []aosp.Finding{}
	}
	if rep.Notes == nil {
		rep.Notes = []string{}
	}
	if opts.Check && opts.Attest.Enabled() {
		if err := attest(opts, pol, plan, rep); err != nil {
			return err
		}
	}
	out, errOut := io.Writer(opts.IO.Out), io.Writer(termtext.NewWriter(opts.IO.ErrOut))
	if !opts.JSON {
		out = termtext.NewWriter(out) // tree paths and reasons quote the tree's files
	}
	if !opts.JSON {
		if plan.PermissionSource != "" {
			fmt.Fprintf(errOut, "note: privileged permissions from %s\n", plan.PermissionSource)
		}
		for _, n := range plan.Notes {
			fmt.Fprintf(errOut, "note: %s\n", n)
		}
	}
	if plan.Blocked() {
		if opts.JSON {
			return finishJSON(out, rep, cmdutil.Silent(cmdutil.ExitNotCompliant))
		}
		for _, b := range plan.Blockers {
			fmt.Fprintf(out, "BLOCKED %s\n", b)
		}
		fmt.Fprintf(errOut, "provkit: nothing was written: %s the patch\n", cmdutil.Count(len(plan.Blockers), "problem blocks", "problems block"))
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	}
	switch {
	case opts.Check:
		if opts.JSON {
			if plan.Compliant() {
				return finishJSON(out, rep, nil)
			}
			return finishJSON(out, rep, cmdutil.Silent(cmdutil.ExitNotCompliant))
		}
		if plan.Compliant() {
			what := "compliant: every app of the policy is in the tree"
			if opts.Revert {
				what = "nothing of provkit's is left in the tree"
			}
			fmt.Fprintln(out, what)
			return nil
		}
		for _, c := range plan.Changes {
			fmt.Fprintf(out, "NOT COMPLIANT %s %s: %s\n", c.Path, needs(c.Action), c.Reason)
		}
		return cmdutil.Silent(cmdutil.ExitNotCompliant)
	case opts.DryRun:
		rep.Diff = plan.Diff()
		if opts.JSON {
			return finishJSON(out, rep, nil)
		}
		if len(plan.Changes) == 0 {
			fmt.Fprintln(errOut, "nothing to change")
			return nil
		}
		fmt.Fprint(out, rep.Diff)
		fmt.Fprintf(errOut, "dry run: %s would change; nothing was written\n", cmdutil.Count(len(plan.Changes), "file", "files"))
		return nil
	}
	if len(plan.Changes) == 0 {
		if opts.JSON {
			return finishJSON(out, rep, nil)
		}
		fmt.Fprintln(out, "nothing to change")
		return nil
	}
	if err := plan.Apply(); err != nil {
		return fmt.Errorf("writing the patch (the tree is unchanged): %w", err)
	}
	rep.Applied = true
	if opts.JSON {
		return finishJSON(out, rep, nil)
	}
	for _, c := range plan.Changes {
		fmt.Fprintf(out, "%-6s %s: %s\n", c.Action, c.Path, c.Reason)
	}
	return nil
}

// attest writes the signed attestation of a --check: the subjects are the policy's APKs and the
// tree (named by its path and product; its digest is the SHA-256 of the check report, which lists
// every change the tree still needs), the rules are each app's checks, each blocker and each
// missing change.
func attest(opts *Options, pol *policy.Policy, plan *aosp.Plan, rep report) error {
	c, err := evidence.NewCompliance(evidence.KindPatchCheck, pol)
	if err != nil {
		return err
	}
	c.Verdict = evidence.VerdictNotCompliant
	if !plan.Blocked() && plan.Compliant() {
		c.Verdict = evidence.VerdictCompliant
	}
	st := &evidence.Statement{Predicate: c}
	for _, a := range rep.Apps {
		c.Rules = append(c.Rules, evidence.Rules(a.Package, a.Checks)...)
		if a.APK != "" {
			if sub, err := evidence.FileSubject(a.APK); err == nil {
				st.Subject = append(st.Subject, sub)
			}
		}
	}
	for _, b := range rep.Blockers {
		c.Rules = append(c.Rules, evidence.RuleResult{Subject: "tree", Rule: "patch-blocker", Pass: false, Detail: b.String()})
	}
	for _, ch := range rep.Changes {
		c.Rules = append(c.Rules, evidence.RuleResult{Subject: "tree", Rule: "tree-has-app", Pass: false, Detail: ch.Path + " " + needs(ch.Action) + ": " + ch.Reason})
	}
	if len(rep.Changes) == 0 && len(rep.Blockers) == 0 {
		c.Rules = append(c.Rules, evidence.RuleResult{Subject: "tree", Rule: "tree-has-app", Pass: true, Detail: "every app of the policy is in the product"})
	}
	doc, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	st.Subject = append(st.Subject, evidence.Subject{Name: "tree:" + rep.Tree, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])},
		Annotations: map[string]string{"product": rep.Product, "tree": rep.Tree}})
	return opts.Attest.Write(opts.IO.ErrOut, st, rep)
}

func needs(action string) string {
	switch action {
	case "create":
		return "is missing"
	case "delete":
		return "must go"
	}
	return "must change"
}

func finishJSON(w io.Writer, rep report, ret error) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return ret
}
