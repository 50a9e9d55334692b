package buildinfo

import (
	"runtime/debug"
	"strings"
	"time"
)

// Version may be set at link time (-ldflags "-X github.com/provkit/provkit/internal/buildinfo.Version=v1.2.3"),
// for a packaged build whose build info carries no module version; it wins over the build info.
var Version = ""

// Info identifies a provkit build.
type Info struct {
	// Version is the module version ("v0.3.1", or a pseudo-version), or "(devel)" for a build from
	// a checkout that Go could not stamp with one.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, empty when unknown (go run, go test).
	Revision string `json:"revision,omitempty"`
	// Time is the commit time of Revision, zero when unknown.
	Time time.Time `json:"time,omitzero"`
	// Modified reports a build from a working tree with uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"goVersion"`
}

// Get reads the running binary's build information.
func Get() Info {
	in := Info{Version: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		in.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					in.Time = t
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if Version != "" {
		in.Version = Version
	}
	return in
}

// String is the one-line form: "v0.3.1 (rev 9325886abcde, 2026-12-05T10:00:00Z, modified)".
func (in Info) String() string {
	var extra []string
	if in.Revision != "" {
		r := in.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		extra = append(extra, "rev "+r)
	}
	if !in.Time.IsZero() {
		extra = append(extra, in.Time.UTC().Format(time.RFC3339))
	}
	if in.Modified {
		extra = append(extra, "modified")
	}
	if len(extra) == 0 {
		return in.Version
	}
	return in.Version + " (" + strings.Join(extra, ", ") + ")"
}
