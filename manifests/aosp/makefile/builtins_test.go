package makefile

import (
	"path"
	"strings"
	"testing"
)

// fsEnv is an Env over a fixed file list, with Wildcard and Find.
type fsEnv struct {
	vars  map[string]string
	files []string
}

func (e fsEnv) Lookup(n string) (string, bool) { v, ok := e.vars[n]; return v, ok }
func (e fsEnv) MyDir() string                  { return "device/google/redfin" }
func (e fsEnv) Wildcard(p string) ([]string, bool) {
	var out []string
	for _, f := range e.files {
		if ok, _ := path.Match(p, f); ok {
			out = append(out, f)
		}
	}
	sortStrings(out) // as GNU make 4.3 and provkit's tree glob return them
	return out, true
}
func (e fsEnv) Find(dir, pat string) ([]string, bool) {
	var out []string
	for _, f := range e.files {
		if ok, _ := path.Match(pat, path.Base(f)); ok && strings.HasPrefix(f, dir+"/") {
			out = append(out, f)
		}
	}
	return out, true
}

func TestBuildMakeFunctions(t *testing.T) {
	env := fsEnv{
		vars: map[string]string{"LOCAL_PATH": "device/google/redfin", "TARGET_COPY_OUT_VENDOR": "vendor", "TARGET_COPY_OUT_PRODUCT": "product"},
		files: []string{"device/google/redfin/audio/mixer_paths.xml", "device/google/redfin/audio/audio_policy.xml",
			"device/google/redfin/permissions/a.xml", "device/google/redfin/permissions/sub/b.xml", "device/google/redfin/permissions/README",
			"vendor/google/redfin/proprietary/present.xml"},
	}
	for _, tc := range []struct{ in, want string }{
		{"$(call add-to-product-copy-files-if-exists, vendor/google/redfin/proprietary/present.xml:$(TARGET_COPY_OUT_VENDOR)/etc/present.xml vendor/google/redfin/proprietary/absent.xml:vendor/etc/absent.xml)",
			"vendor/google/redfin/proprietary/present.xml:vendor/etc/present.xml"},
		{"$(call find-copy-subdir-files,*.xml,$(LOCAL_PATH)/permissions,$(TARGET_COPY_OUT_PRODUCT)/etc/permissions)",
			"device/google/redfin/permissions/a.xml:product/etc/permissions/a.xml device/google/redfin/permissions/sub/b.xml:product/etc/permissions/sub/b.xml"},
		{"$(foreach f,$(wildcard $(LOCAL_PATH)/audio/*.xml),$(f):$(TARGET_COPY_OUT_VENDOR)/etc/$(notdir $(f)))",
			"device/google/redfin/audio/audio_policy.xml:vendor/etc/audio_policy.xml device/google/redfin/audio/mixer_paths.xml:vendor/etc/mixer_paths.xml"},
	} {
		got, known := Expand(tc.in, env)
		if !known || got != tc.want {
			t.Errorf("%s\n got %q (known %v)\nwant %q", tc.in, got, known, tc.want)
		}
	}
	for _, unknown := range []string{"$(call is-board-platform-in-list,lito)", "$(foreach f,$(UNSET),$(f))", "$(call find-copy-subdir-files,*,$(UNSET),x)"} {
		if _, known := Expand(unknown, env); known {
			t.Errorf("%s: known", unknown)
		}
	}
	// Without a Finder, find-copy-subdir-files is unknown rather than empty.
	if _, known := Expand("$(call find-copy-subdir-files,*,a,b)", mapEnv{}); known {
		t.Error("find-copy-subdir-files without a Finder: known")
	}
}
