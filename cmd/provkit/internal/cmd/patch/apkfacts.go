package patch

import (
	"context"
	"errors"

	"github.com/provkit/provkit/manifests/aosp"
)

// newInspector returns the APK inspector backed by firmware/apk. It is replaced by the real
// adapter (apkfacts_apk.go) once firmware/apk is part of the build.
var newInspector = func() aosp.Inspector { return unavailableInspector{} }

type unavailableInspector struct{}

// errNoEngine says that this build has no APK engine to verify the APK with.
var errNoEngine = errors.New("this provkit build has no APK engine (firmware/apk) to verify the APK with")

func (unavailableInspector) InspectAPK(context.Context, string) (*aosp.APKFacts, error) {
	return nil, errNoEngine
}
