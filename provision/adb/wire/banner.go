package wire

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Feature names announced in the banner's features= list (adb's transport.h). A peer uses a feature
// only when both sides announce it.
const (
	FeatureShell2                   = "shell_v2"
	FeatureCmd                      = "cmd"
	FeatureStat2                    = "stat_v2"
	FeatureLs2                      = "ls_v2"
	FeatureLibusb                   = "libusb"
	FeaturePushSync                 = "push_sync"
	FeatureApex                     = "apex"
	FeatureFixedPushMkdir           = "fixed_push_mkdir"
	FeatureAbb                      = "abb"
	FeatureFixedPushSymlinkTime     = "fixed_push_symlink_timestamp"
	FeatureAbbExec                  = "abb_exec"
	FeatureRemountShell             = "remount_shell"
	FeatureTrackApp                 = "track_app"
	FeatureSendRecv2                = "sendrecv_v2"
	FeatureSendRecv2Brotli          = "sendrecv_v2_brotli"
	FeatureSendRecv2LZ4             = "sendrecv_v2_lz4"
	FeatureSendRecv2Zstd            = "sendrecv_v2_zstd"
	FeatureSendRecv2DryRunSend      = "sendrecv_v2_dry_run_send"
	FeatureDelayedAck               = "delayed_ack"
	FeatureOpenscreenMdns           = "openscreen_mdns"
	FeatureDeviceTrackerProtoFormat = "devicetracker_proto_format"
)

// MaxBannerSize bounds the banner a peer may send (adb reads it from a CNXN payload, so the
// negotiated max payload bounds it too; this is a sanity limit for parsing).
const MaxBannerSize = 64 * 1024

// ErrBadBanner is wrapped by ParseBanner errors.
var ErrBadBanner = errors.New("malformed connection banner")

// Banner is the identity a peer sends in its CNXN payload.
type Banner struct {
	// SystemType is "device", "host", "bootloader", "recovery", "sideload" or "rescue".
	SystemType string
	// Serial is the historical second field; adbd leaves it empty.
	Serial string
	// Props are the key=value pairs before features=, in order (adbd sends ro.product.name,
	// ro.product.model and ro.product.device).
	Props []Prop
	// Features are the features= list, in order.
	Features []string
}

// Prop is one key=value pair of a banner.
type Prop struct{ Key, Value string }

// Prop returns the value of key and whether it is present.
func (b Banner) Prop(key string) (string, bool) {
	for _, p := range b.Props {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Has reports whether the banner announces feature.
func (b Banner) Has(feature string) bool { return slices.Contains(b.Features, feature) }

// String encodes the banner as adbd does: "device::ro.product.name=x;...;features=a,b".
func (b Banner) String() string {
	var s strings.Builder
	s.WriteString(b.SystemType)
	s.WriteByte(':')
	s.WriteString(b.Serial)
	s.WriteByte(':')
	for _, p := range b.Props {
		s.WriteString(p.Key)
		s.WriteByte('=')
		s.WriteString(p.Value)
		s.WriteByte(';')
	}
	s.WriteString("features=")
	s.WriteString(strings.Join(b.Features, ","))
	return s.String()
}

// ParseBanner decodes a CNXN payload. A trailing NUL (older peers send one) is ignored.
func ParseBanner(s string) (Banner, error) {
	if len(s) > MaxBannerSize {
		return Banner{}, fmt.Errorf("parsing banner of %d bytes (max %d): %w", len(s), MaxBannerSize, ErrBadBanner)
	}
	s = strings.TrimRight(s, "\x00")
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Banner{}, fmt.Errorf("parsing banner %q: no ':' after the system type: %w", s, ErrBadBanner)
	}
	if typ == "" || strings.ContainsAny(typ, ";=,") {
		return Banner{}, fmt.Errorf("parsing banner %q: bad system type %q: %w", s, typ, ErrBadBanner)
	}
	b := Banner{SystemType: typ}
	serial, props, ok := strings.Cut(rest, ":")
	if !ok {
		// "device:serial" with nothing else: an old peer.
		b.Serial = rest
		return b, nil
	}
	b.Serial = serial
	for _, kv := range strings.Split(props, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return Banner{}, fmt.Errorf("parsing banner %q: property %q is not key=value: %w", s, kv, ErrBadBanner)
		}
		if k == "features" {
			for _, f := range strings.Split(v, ",") {
				if f != "" {
					b.Features = append(b.Features, f)
				}
			}
			continue
		}
		b.Props = append(b.Props, Prop{k, v})
	}
	return b, nil
}
