package sysconfig

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

const privapp = `<?xml version="1.0" encoding="utf-8"?>
<!--
  ~ Copyright (C) 2024 The Android Open Source Project
  ~ <privapp-permissions package="commented.out"> must not count
  -->
<permissions>
    <privapp-permissions package='ru.oneme.app'>
        <permission name="android.permission.INSTALL_PACKAGES"/>
        <permission
            name="android.permission.MANAGE_USERS" />
        <deny-permission name="android.permission.REBOOT"/>
        <permission/>
    </privapp-permissions>
    <privapp-permissions>
        <permission name="android.permission.DUMP"/>
    </privapp-permissions>
    <feature name="android.software.x"><nested/></feature>
    <install-in-user-type package="ru.oneme.app">
        <install-in user-type="FULL" />
        <install-in user-type="SYSTEM" />
        <do-not-install-in user-type="android.os.usertype.profile.MANAGED" />
        <bogus/>
    </install-in-user-type>
</permissions>
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("/product/etc/permissions/p.xml", []byte(privapp))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Privapp) != 1 || c.Privapp[0].Package != "ru.oneme.app" || c.Privapp[0].Line != 7 {
		t.Fatalf("privapp %+v", c.Privapp)
	}
	p := c.Privapp[0]
	if len(p.Allow) != 2 || p.Allow[0].Name != "android.permission.INSTALL_PACKAGES" || p.Allow[0].Line != 8 || p.Allow[1].Line != 9 {
		t.Fatalf("allow %+v", p.Allow)
	}
	if len(p.Deny) != 1 || p.Deny[0].Name != "android.permission.REBOOT" || p.Deny[0].Where() != "/product/etc/permissions/p.xml:11" {
		t.Fatalf("deny %+v", p.Deny)
	}
	if len(c.UserTypes) != 1 || len(c.UserTypes[0].InstallIn) != 2 || len(c.UserTypes[0].DoNotInstallIn) != 1 || c.UserTypes[0].Line != 18 {
		t.Fatalf("user types %+v", c.UserTypes)
	}
	want := []string{":12: <permission> without name", ":14: <privapp-permissions> without package", ":22: unrecognized <bogus>"}
	if len(c.Problems) != len(want) {
		t.Fatalf("problems %q", c.Problems)
	}
	for i, w := range want {
		if !strings.Contains(c.Problems[i], w) {
			t.Errorf("problem %d = %q, want %q", i, c.Problems[i], w)
		}
	}
	// Other roots contribute nothing.
	c, _ = ParseConfig("x.xml", []byte(`<exceptions><privapp-permissions package="a"/></exceptions>`))
	if len(c.Privapp) != 0 || len(c.Problems) != 1 || !strings.Contains(c.Problems[0], "x.xml:1: root element <exceptions>") {
		t.Fatalf("%+v", c)
	}
	// <config> is a valid root.
	c, _ = ParseConfig("x.xml", []byte("<config>\n<privapp-permissions package=\"a\"><permission name=\"p\"/></privapp-permissions></config>"))
	if len(c.Privapp) != 1 || c.Privapp[0].Allow[0].Line != 2 {
		t.Fatalf("%+v", c)
	}
	if _, err := ParseConfig("big.xml", make([]byte, MaxFileSize+1)); err == nil {
		t.Fatal("oversized file accepted")
	}
}

func TestParseConfigStopsAtSyntaxError(t *testing.T) {
	src := "<permissions>\n<privapp-permissions package=\"a\">\n<permission name=\"p1\"/>\n</privapp-permissions>\n<privapp-permissions package=\"b\">\n<permission name=\"p2\">\n</privapp-permissions>\n<privapp-permissions package=\"c\"/>\n</permissions>\n"
	c, err := ParseConfig("f.xml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// a is kept; b, where the error is, is lost (SystemConfig stores it only once read whole); c is
	// never reached.
	if len(c.Privapp) != 1 || c.Privapp[0].Package != "a" {
		t.Fatalf("%+v", c.Privapp)
	}
	if len(c.Problems) != 1 || !strings.HasPrefix(c.Problems[0], "f.xml:7: not well-formed XML") {
		t.Fatalf("%q", c.Problems)
	}
}

const defaults = `<?xml version='1.0' encoding='utf-8' standalone='yes' ?>
<!-- default grants -->
<exceptions>
    <exception package="ru.oneme.app">
        <!-- Notifications -->
        <permission name="android.permission.POST_NOTIFICATIONS" fixed="false"/>
        <permission name="android.permission.CAMERA" fixed="true" whitelisted="true"/>
    </exception>
    <exception package="other.app"><permission name="android.permission.READ_CONTACTS"/></exception>
    <exception><permission name="lost"/></exception>
</exceptions>
`

func TestParseDefaultPermissions(t *testing.T) {
	g, problems, err := ParseDefaultPermissions("/system/etc/default-permissions/d.xml", []byte(defaults))
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 3 || g[0].Permission != "android.permission.POST_NOTIFICATIONS" || g[0].Line != 6 || g[0].Fixed || !g[1].Fixed || !g[1].Whitelisted || g[2].Package != "other.app" {
		t.Fatalf("%+v", g)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], ":10: <exception> without package") {
		t.Fatalf("%q", problems)
	}
}

// TestWellFormednessAgreesWithXmllint: for documents xmllint (libxml2) calls well formed, no
// syntax problem; for the ones it rejects, a syntax problem on the line it names.
func TestWellFormednessAgreesWithXmllint(t *testing.T) {
	xmllint := testtool.Require(t, "xmllint")[0]
	docs := map[string]string{
		"good-privapp":     privapp,
		"good-defaults":    defaults,
		"good-cdata":       "<permissions>\n<![CDATA[ <x> ]]>\n<privapp-permissions package=\"a&amp;b\"/>\n</permissions>\n",
		"good-pi":          "<?xml version=\"1.0\"?>\n<?php nothing ?>\n<permissions/>\n",
		"unclosed":         "<permissions>\n<privapp-permissions package=\"a\">\n<permission name=\"x\"/>\n",
		"mismatched":       "<permissions>\n<privapp-permissions package=\"a\">\n</permission>\n</permissions>\n",
		"unquoted":         "<permissions>\n<privapp-permissions package=a>\n</privapp-permissions>\n</permissions>\n",
		"bad-entity":       "<permissions>\n\n<privapp-permissions package=\"&nope;\"/>\n</permissions>\n",
		"two-roots":        "<permissions/>\n<permissions/>\n",
		"bad-comment":      "<permissions>\n<!-- a -- b -->\n</permissions>\n",
		"lt-in-attr":       "<permissions>\n<privapp-permissions package=\"a<b\"/>\n</permissions>\n",
		"junk-after-close": "<permissions/>\n\nhello\n",
	}
	lineRe := regexp.MustCompile(`:(\d+): `)
	dir := t.TempDir()
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".xml")
			if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(xmllint, "--noout", p).CombinedOutput()
			wellFormed := err == nil
			var problems []string
			if strings.Contains(doc, "<exceptions>") {
				_, problems, _ = ParseDefaultPermissions(p, []byte(doc))
			} else {
				c, _ := ParseConfig(p, []byte(doc))
				problems = c.Problems
			}
			syntax := ""
			for _, pr := range problems {
				if strings.Contains(pr, "not well-formed") || strings.Contains(pr, "unexpected end of file") {
					syntax = pr
				}
			}
			if wellFormed != (syntax == "") {
				t.Fatalf("xmllint well-formed=%v (%s), provkit problems %q", wellFormed, out, problems)
			}
			if !wellFormed {
				m := lineRe.FindStringSubmatch(string(out))
				ours := lineRe.FindStringSubmatch(syntax)
				if m == nil {
					t.Fatalf("no line in xmllint output %s", out)
				}
				if ours == nil {
					// EOF inside an element: xmllint names the last line.
					if !strings.Contains(syntax, "unexpected end of file") {
						t.Fatalf("no line in %q", syntax)
					}
					return
				}
				want, _ := strconv.Atoi(m[1])
				got, _ := strconv.Atoi(ours[1])
				if got != want {
					t.Errorf("error line %d, xmllint says %d (%s | %s)", got, want, syntax, strings.TrimSpace(string(out)))
				}
			}
		})
	}
}

// FuzzParse: any bytes parse without panic; every entry has a name, a line inside the file and
// the file name; problems name the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(privapp))
	f.Add([]byte(defaults))
	f.Add([]byte("<permissions><privapp-permissions package=\"a\"><permission name=\"b\""))
	f.Add([]byte("<config>\n<install-in-user-type package='p'><install-in user-type='FULL'/></install-in-user-type></config>"))
	f.Add([]byte("<?xml version='1.0' encoding='ISO-8859-1'?>\n<!-- <exception package=\"x\"> caf\xe9 -->\n<exceptions><exception\n package=\"a.b\"/></exceptions>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(string(data), "\n") + 1
		ok := func(e Entry) {
			if e.Name == "" || e.File != "f.xml" || e.Line < 1 || e.Line > lines {
				t.Fatalf("bad entry %+v", e)
			}
		}
		c, err := ParseConfig("f.xml", data)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.Privapp {
			if p.Package == "" {
				t.Fatal("privapp without package")
			}
			for _, e := range append(p.Allow, p.Deny...) {
				ok(e)
			}
		}
		for _, u := range c.UserTypes {
			for _, e := range append(u.InstallIn, u.DoNotInstallIn...) {
				ok(e)
			}
		}
		for _, pr := range c.Problems {
			if !strings.HasPrefix(pr, "f.xml") {
				t.Fatalf("problem without file: %q", pr)
			}
		}
		// The strict reader: either an error naming the file, or packages at lines of the file, and
		// every privapp-permissions entry the lenient reader kept is among them.
		refs, err := Packages("f.xml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.xml:") {
				t.Fatalf("error without file:line: %v", err)
			}
		} else {
			named := map[string]bool{}
			for _, r := range refs {
				if r.File != "f.xml" || r.Line < 1 || r.Line > lines {
					t.Fatalf("bad package ref %+v", r)
				}
				named[r.Element+" "+r.Package+" "+r.Where()] = true
			}
			for _, p := range c.Privapp {
				if k := "privapp-permissions " + p.Package + " " + fmt.Sprintf("f.xml:%d", p.Line); !named[k] {
					t.Fatalf("ParseConfig found %s, Packages did not (%v)", k, refs)
				}
			}
		}
		g, problems, err := ParseDefaultPermissions("f.xml", data)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range g {
			if x.Package == "" || x.Permission == "" || x.Line < 1 || x.Line > lines {
				t.Fatalf("bad grant %+v", x)
			}
		}
		for _, pr := range problems {
			if !strings.HasPrefix(pr, "f.xml") {
				t.Fatalf("problem without file: %q", pr)
			}
		}
	})
}
