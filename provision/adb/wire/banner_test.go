package wire

import (
	"errors"
	"slices"
	"testing"
)

func TestParseBanner(t *testing.T) {
	// Banners as adbd and the adb host send them.
	dev := "device::ro.product.name=walleye;ro.product.model=Pixel 2;ro.product.device=walleye;features=cmd,stat_v2,shell_v2\x00"
	b, err := ParseBanner(dev)
	if err != nil {
		t.Fatal(err)
	}
	if b.SystemType != "device" || b.Serial != "" {
		t.Fatalf("got %+v", b)
	}
	if m, _ := b.Prop("ro.product.model"); m != "Pixel 2" {
		t.Errorf("model %q", m)
	}
	if !b.Has(FeatureShell2) || b.Has(FeatureAbbExec) {
		t.Errorf("features %v", b.Features)
	}
	if got := b.String(); got != dev[:len(dev)-1] {
		t.Errorf("re-encoded:\n got %q\nwant %q", got, dev)
	}

	h, err := ParseBanner("host::features=shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,fixed_push_symlink_timestamp,abb_exec,remount_shell")
	if err != nil {
		t.Fatal(err)
	}
	if h.SystemType != "host" || len(h.Features) != 10 || len(h.Props) != 0 {
		t.Fatalf("got %+v", h)
	}
	old, err := ParseBanner("device:0123456789")
	if err != nil || old.Serial != "0123456789" {
		t.Fatalf("old banner: %+v %v", old, err)
	}
	for _, bad := range []string{"", "nocolon", ":x:features=a", "device::=x;features=a", "device::novalue;features=a"} {
		if _, err := ParseBanner(bad); !errors.Is(err, ErrBadBanner) {
			t.Errorf("%q: got %v, want ErrBadBanner", bad, err)
		}
	}
}

func FuzzParseBanner(f *testing.F) {
	f.Add("device::ro.product.name=x;ro.product.model=y;ro.product.device=z;features=shell_v2,cmd")
	f.Add("host::features=")
	f.Add("bootloader:abc")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBanner(s)
		if err != nil {
			return
		}
		// A parsed banner re-encodes to something that parses to the same banner.
		b2, err := ParseBanner(b.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if b2.SystemType != b.SystemType || !slices.Equal(b2.Features, b.Features) || !slices.Equal(b2.Props, b.Props) {
			t.Fatalf("round trip changed %+v into %+v", b, b2)
		}
	})
}
