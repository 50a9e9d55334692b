package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const pinA = "3f2a6e2bd4a8f5c8b3e4f1a09c1d2e3f4a5b6c7d8e9f00112233445566778899"
const pinB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const good = `apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: national-messenger, authority: "Ministry of Digital Development"}
apps:
  - package: ru.oneme.app
    apk: apks/messenger.apk
    signers: [{sha256: "` + pinA + `"}]
    minVersionCode: 1
    partition: product
    privileged: false
    removable: false
    enabled: true
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
    privappPermissions: []
  - package: kz.aitu.messenger
    signers:
      - sha256: "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
        name: release 2024
    privileged: true
    privappPermissions: [android.permission.INSTALL_PACKAGES]
devices:
  fingerprints: ["google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys"]
`

func TestParseGood(t *testing.T) {
	p, err := Parse([]byte(good), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Apps) != 2 || p.Apps[0].Package != "ru.oneme.app" || p.Apps[1].Package != "kz.aitu.messenger" {
		t.Fatalf("apps = %+v", p.Apps)
	}
	a := p.Apps[0]
	if a.Line != 5 || p.Apps[1].Line != 15 {
		t.Errorf("app lines = %d, %d; want 5, 15", a.Line, p.Apps[1].Line)
	}
	if a.MinVersionCode != 1 || a.Partition != "product" || !a.IsEnabled() || a.APK != "apks/messenger.apk" {
		t.Errorf("app[0] = %+v", a)
	}
	if got := p.Apps[1].PinnedDigests(); len(got) != 1 || got[0] != pinB {
		t.Errorf("normalised pin = %v, want %s", got, pinB)
	}
	if p.Apps[1].PatchPartition() != DefaultPatchPartition || p.Apps[1].Partition != "" {
		t.Errorf("partition default: %q / %q", p.Apps[1].Partition, p.Apps[1].PatchPartition())
	}
	if got := a.ModuleName(); got != "RuOnemeApp" {
		t.Errorf("ModuleName = %q", got)
	}
	if p.Where(&p.Apps[1]) != "p.yaml:15" {
		t.Errorf("Where = %q", p.Where(&p.Apps[1]))
	}
}

func TestParseRejects(t *testing.T) {
	base := strings.Split(good, "\n")
	edit := func(line int, repl string) string { // replace a 1-based line
		l := append([]string(nil), base...)
		l[line-1] = repl
		return strings.Join(l, "\n")
	}
	cases := []struct {
		name, doc string
		want      []string // substrings of the error, the first names file:line
	}{
		{"empty", "", []string{"p.yaml: the file is empty"}},
		{"not yaml", "apps: [unclosed", []string{"p.yaml:1:"}},
		{"not mapping", "- a\n- b\n", []string{"p.yaml:1:", "must be a mapping"}},
		{"wrong apiVersion", edit(1, "apiVersion: v1"), []string{"p.yaml:1: apiVersion: must be \"provkit.dev/v1\""}},
		{"wrong kind", edit(2, "kind: Policy"), []string{"p.yaml:2: kind: must be"}},
		{"typo field", edit(7, "    signer: [{sha256: \""+pinA+"\"}]"), []string{"p.yaml:7: apps[0]: unknown field \"signer\"; did you mean \"signers\"?", "p.yaml:5: apps[0].signers: no signer pinned"}},
		{"bad digest", edit(7, "    signers: [{sha256: abc}]"), []string{"p.yaml:7: apps[0].signers[0].sha256: \"abc\" is not a SHA-256 digest"}},
		{"bad partition", edit(9, "    partition: data"), []string{"p.yaml:9: apps[0].partition: \"data\" is not a partition"}},
		{"bad int", edit(8, "    minVersionCode: lots"), []string{"p.yaml:8:", "lots"}},
		{"negative version", edit(8, "    minVersionCode: -3"), []string{"p.yaml:8: apps[0].minVersionCode: must not be negative"}},
		{"bad package", edit(5, "  - package: messenger"), []string{"p.yaml:5: apps[0].package: \"messenger\" is not a valid Android package name"}},
		{"duplicate package", edit(15, "  - package: ru.oneme.app"), []string{"p.yaml:15: apps[1].package: \"ru.oneme.app\" is listed twice"}},
		{"privapp without privileged", edit(14, "    privappPermissions: [android.permission.INSTALL_PACKAGES]"), []string{"p.yaml:14: apps[0].privappPermissions: privileged permissions are only granted to privileged apps"}},
		{"bad permission", edit(13, "    grantPermissions: [\"post notifications\"]"), []string{"p.yaml:13: apps[0].grantPermissions[0]:"}},
		{"list for mapping", edit(3, "metadata: [a, b]"), []string{"p.yaml:3: metadata: expected a mapping"}},
		{"duplicate key", edit(4, "kind: PreinstallPolicy\napps:"), []string{"duplicate key"}},
		{"bad fingerprint", edit(22, "  fingerprints: [\"not a fingerprint\"]"), []string{"p.yaml:22: devices.fingerprints[0]:"}},
		// Hostile strings: a newline in the name would put live make code into the product makefile.
		{"name with make code", edit(3, `metadata: {name: "x\n$(shell touch /tmp/pwned)"}`), []string{"p.yaml:3: metadata.name:", "letters, digits"}},
		{"name with XML comment end", edit(3, `metadata: {name: "a --> <x/>"}`), []string{"p.yaml:3: metadata.name:"}},
		{"authority with escape", edit(3, `metadata: {name: n, authority: "Ministry\x1b[2J"}`), []string{"p.yaml:3: metadata.authority:", "control character"}},
		{"override with make code", edit(14, `    overrides: ["Foo $(shell id)"]`), []string{"p.yaml:14: apps[0].overrides[0]:"}},
		{"override with newline", edit(14, `    overrides: ["Foo\nPRODUCT_PACKAGES += Evil"]`), []string{"p.yaml:14: apps[0].overrides[0]:"}},
		{"apk path with newline", edit(6, `    apk: "a.apk\nLOCAL_MODULE := x"`), []string{"p.yaml:6: apps[0].apk:", "control character"}},
		{"fingerprint with make code", edit(22, `  fingerprints: ["a/b/c:14/$(shell id)/1:user/release-keys"]`), []string{"p.yaml:22: devices.fingerprints[0]:"}},
		{"signer name with bidi override", edit(18, "        name: \"release\\u202egnp.exe\""), []string{"p.yaml:18: apps[1].signers[0].name:", "control character"}},
		{"no apps", "apiVersion: provkit.dev/v1\nkind: PreinstallPolicy\napps: []\n", []string{"p.yaml:3: apps: the policy mandates no app"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), "p.yaml")
			if err == nil {
				t.Fatal("accepted an invalid policy")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadResolvesDirAndReportsMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dir != dir || p.Source != path {
		t.Errorf("Dir=%q Source=%q", p.Dir, p.Source)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckAPK(t *testing.T) {
	p, err := Parse([]byte(good), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("ab", 32)
	cases := []struct {
		name     string
		facts    APKFacts
		failing  []string // rules expected to fail
		contains string
	}{
		{"compliant", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{pinA}}, nil, "is pinned"},
		{"pin with colons and case", APKFacts{Package: "kz.aitu.messenger", VersionCode: 0, Verified: true, Signers: []string{strings.ToUpper(pinB)}}, nil, ""},
		{"not listed", APKFacts{Package: "com.example", Verified: true, Signers: []string{pinA}}, []string{RuleAppListed}, "not named in p.yaml"},
		{"wrong signer", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{other}}, []string{RuleSignerPin}, "is not pinned"},
		{"rotated from pinned", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{other}, Lineage: []string{pinA, other}}, nil, "rotated from pinned"},
		{"lineage without pin", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{other}, Lineage: []string{pinB, other}}, []string{RuleSignerPin}, ""},
		{"second signer unpinned", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{pinA, other}}, []string{RuleSignerPin}, other},
		{"too old", APKFacts{Package: "ru.oneme.app", VersionCode: 0, Verified: true, Signers: []string{pinA}}, []string{RuleMinVersion}, "below the minimum 1"},
		{"not verified", APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: false, VerifyErrors: []string{"v2 digest mismatch"}, Signers: []string{pinA}}, []string{RuleSignature, RuleSignerPin}, "v2 digest mismatch"},
		{"unsigned", APKFacts{Package: "ru.oneme.app", VersionCode: 5}, []string{RuleSignature, RuleSignerPin}, "no signer"},
		{"tampered after signing by the pinned key", APKFacts{Package: "ru.oneme.app", VersionCode: 5, VerifyErrors: []string{"V2_SIG_APK_DIGEST_DID_NOT_VERIFY"}, Signers: []string{pinA}}, []string{RuleSignature, RuleSignerPin}, "claims signer " + pinA + " (pinned) but does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, checks := p.CheckAPK(c.facts)
			var failed []string
			all := ""
			for _, ch := range checks {
				all += ch.String() + "\n"
				if !ch.Pass {
					failed = append(failed, ch.Rule)
				}
			}
			if strings.Join(failed, ",") != strings.Join(c.failing, ",") {
				t.Errorf("failed rules = %v, want %v\n%s", failed, c.failing, all)
			}
			if AllPass(checks) != (len(c.failing) == 0) {
				t.Errorf("AllPass disagrees with the failures")
			}
			if !strings.Contains(all, c.contains) {
				t.Errorf("checks lack %q:\n%s", c.contains, all)
			}
		})
	}
}

// TestCheckAPKFor: an APK given for an app (patch's apk: path) that declares another package fails
// app-listed with both names, and the same rules follow as for a listed APK.
func TestCheckAPKFor(t *testing.T) {
	p, err := Parse([]byte(good), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app, _ := p.App("ru.oneme.app")
	f := APKFacts{Package: "ru.oneme.app", VersionCode: 5, Verified: true, Signers: []string{pinA}}
	_, viaLookup := p.CheckAPK(f)
	if got := p.CheckAPKFor(app, f); !slices.Equal(got, viaLookup) || !AllPass(got) {
		t.Fatalf("CheckAPKFor = %v, CheckAPK = %v", got, viaLookup)
	}
	f.Package = "kz.aitu.messenger"
	got := p.CheckAPKFor(app, f)
	if got[0].Rule != RuleAppListed || got[0].Pass || !strings.Contains(got[0].Detail, `"kz.aitu.messenger"`) || !strings.Contains(got[0].Detail, `for "ru.oneme.app"`) {
		t.Fatalf("mismatched package: %v", got[0])
	}
	if len(got) != 4 {
		t.Fatalf("want app-listed and the three APK rules, got %v", got)
	}
}

func TestCheckFingerprint(t *testing.T) {
	p, err := Parse([]byte(good), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.CheckFingerprint("google/oriole/oriole:14/AP2A.240805.005/12025142:user/release-keys"); !c.Pass {
		t.Error(c)
	}
	if c := p.CheckFingerprint("google/oriole/oriole:14/AP2A.240805.005/12025142:userdebug/test-keys"); c.Pass {
		t.Error("uncertified build passed")
	}
	if c := p.CheckFingerprint(""); c.Pass || !strings.Contains(c.Detail, "unknown") {
		t.Error(c)
	}
	p.Devices.Fingerprints = nil
	if c := p.CheckFingerprint("anything"); !c.Pass {
		t.Error(c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: provkit.dev/v1\nkind: PreinstallPolicy\napps: [{package: a.b, signers: [{sha256: x}]}]\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("apps: {package: [1, 2]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if p.APIVersion != APIVersion || p.Kind != Kind || len(p.Apps) == 0 {
			t.Fatalf("accepted an invalid policy: %+v", p)
		}
		for _, a := range p.Apps {
			if len(a.Signers) == 0 {
				t.Fatalf("accepted an app without signers: %+v", a)
			}
		}
	})
}

// TestREADMEListsEveryRuleOnce: the rule table of README's policy section has one row per rule ID
// the code reports, no more, no fewer.
func TestREADMEListsEveryRuleOnce(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "\n## The policy file\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, table, ok := strings.Cut(sec, "| rule | passes when | judged by |")
	if !ok {
		t.Fatal("README's policy section has no rule table")
	}
	rows := map[string]int{}
	for _, l := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(l, "| `") {
			break
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(l, "| `"), "`")
		rows[id]++
	}
	for _, r := range Rules {
		if rows[r] != 1 {
			t.Errorf("rule %s is in README's table %d times, want once", r, rows[r])
		}
		delete(rows, r)
	}
	for id := range rows {
		t.Errorf("README's table lists %q, which no code reports", id)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(Rules)))) != len(Rules) {
		t.Errorf("Rules lists an ID twice: %v", Rules)
	}
	for _, r := range DeviceRules {
		if !slices.Contains(Rules, r) {
			t.Errorf("device rule %s is not in Rules", r)
		}
	}
}

// TestAliasesAreCheckedOnce: a node that anchors and aliases repeat is checked once against its
// type, so a small file cannot make validation walk (and report) millions of values; and an error
// lists at most maxProblems problems.
func TestAliasesAreCheckedOnce(t *testing.T) {
	const n = 300
	src := "apiVersion: provkit.dev/v1\nkind: PreinstallPolicy\nmetadata: {name: x}\n" +
		"apps:\n  - &a {package: a.b, signers: [&s [" + strings.Repeat("{sha256: a},", n) + "]]}\n" +
		"  - {package: c.d, signers: [" + strings.Repeat("*s,", n) + "]}\n"
	_, err := Parse([]byte(src), "p.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a validation error, got %v", err)
	}
	// One "expected a mapping" for the list that *s names, however often it is aliased.
	shape := 0
	for _, p := range ve.Problems {
		if strings.Contains(p.Msg, "expected a mapping of sha256") {
			shape++
		}
	}
	if shape != 2 || len(ve.Problems) > maxProblems+1 {
		t.Fatalf("%d shape problems (want 2: the anchor's own use and its aliases, once), %d in all:\n%v", shape, len(ve.Problems), err)
	}

	many := "apiVersion: provkit.dev/v1\nkind: PreinstallPolicy\nmetadata: {name: x}\napps:\n" + strings.Repeat("  - {package: a.b, signers: [{sha256: zz}]}\n", 200)
	_, err = Parse([]byte(many), "p.yaml")
	if !errors.As(err, &ve) || len(ve.Problems) != maxProblems+1 || !strings.Contains(ve.Problems[maxProblems].Msg, "more problems") {
		t.Fatalf("a file with hundreds of problems: %d listed\n%v", len(ve.Problems), err)
	}
}
