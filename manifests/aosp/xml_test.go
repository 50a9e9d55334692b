package aosp

import (
	"strings"
	"testing"
)

// A permission file as vendors write them: a single-quoted declaration, a licence comment, and a
// comment holding an example entry that must not count.
const vendorPrivapp = `<?xml version='1.0' encoding='utf-8' standalone='yes' ?>
<!--
  Copyright (C) 2024 Acme
  Example:
    <privapp-permissions package="ru.oneme.app">
        <permission name="android.permission.INSTALL_PACKAGES"/>
    </privapp-permissions>
-->
<permissions>
    <privapp-permissions package='com.acme.store'>
        <permission name="android.permission.INSTALL_PACKAGES"/>
    </privapp-permissions>
    <!-- <privapp-permissions package="com.acme.disabled"/> -->
    <privapp-permissions
        package="ru.oneme.app">
        <deny-permission name="android.permission.READ_LOGS"/>
    </privapp-permissions>
</permissions>
`

func TestPermEntriesSkipCommentsAndFollowQuotes(t *testing.T) {
	got, err := permEntries("vendor/acme/etc/privapp.xml", []byte(vendorPrivapp))
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range got {
		s = append(s, e.Kind+" "+e.Package+" "+e.Loc.String())
	}
	want := "privapp-permissions com.acme.store vendor/acme/etc/privapp.xml:10," +
		"privapp-permissions ru.oneme.app vendor/acme/etc/privapp.xml:14"
	if strings.Join(s, ",") != want {
		t.Fatalf("entries:\n%s\nwant\n%s", strings.Join(s, "\n"), strings.ReplaceAll(want, ",", "\n"))
	}
	latin1 := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- caf\xe9 -->\n<permissions><privapp-permissions package=\"a.b\"/></permissions>\n"
	if got, err := permEntries("l.xml", []byte(latin1)); err != nil || len(got) != 1 || got[0].Package != "a.b" {
		t.Fatalf("latin-1 file: %v %v", got, err)
	}
	if _, err := permEntries("x.xml", []byte("<permissions><privapp-permissions package=\"a\">\n</permissions>")); err == nil || !strings.Contains(err.Error(), "x.xml:") {
		t.Fatalf("malformed XML: %v", err)
	}
}
