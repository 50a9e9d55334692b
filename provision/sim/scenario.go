package sim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/provkit/provkit/provision/adb/wire"
	"github.com/provkit/provkit/provision/sim/android"
)

// Scenario is a simulator scenario file: device templates that the simulator cycles through.
type Scenario struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Devices    []DeviceSpec `yaml:"devices"`

	// dir resolves relative paths (the scenario file's directory).
	dir string
	// apks holds APK bytes supplied in memory (built-in scenarios), by reference name.
	apks map[string][]byte
}

// DeviceSpec is one device template of a scenario.
type DeviceSpec struct {
	Serial         string                       `yaml:"serial"`
	Android        int                          `yaml:"android"` // release 10..15
	SDK            int                          `yaml:"sdk"`     // or API level 29..35
	Product        string                       `yaml:"product"`
	Model          string                       `yaml:"model"`
	Device         string                       `yaml:"device"`
	Properties     map[string]string            `yaml:"properties"`
	Settings       map[string]map[string]string `yaml:"settings"`
	Users          []int                        `yaml:"users"`
	Features       []string                     `yaml:"features"` // adbd features (default: DefaultFeatures)
	Auth           string                       `yaml:"auth"`
	AuthorizedKeys []string                     `yaml:"authorizedKeys"`
	Packages       []PackageSpec                `yaml:"packages"`
	Files          []FileSpec                   `yaml:"files"`
	Partitions     []PartitionSpec              `yaml:"partitions"`
	Slotted        *bool                        `yaml:"slotted"`
	Unlocked       *bool                        `yaml:"unlocked"`
	Mode           string                       `yaml:"mode"` // android (default), bootloader, fastbootd, recovery, sideload
	Faults         FaultSpec                    `yaml:"faults"`
	Sideload       SideloadSpec                 `yaml:"sideload"`
}

// SideloadSpec says how a device in sideload mode takes an OTA package (adb sideload).
type SideloadSpec struct {
	Legacy        bool   `yaml:"legacy"`        // serve only the pre-KitKat sideload:<size> service
	Stay          bool   `yaml:"stay"`          // stay in sideload mode after a good install (default: reboot to Android)
	MaxSize       string `yaml:"maxSize"`       // largest package held (default and at most 1G)
	DoneOnFailure bool   `yaml:"doneOnFailure"` // end a failed install with DONEDONE, as a real recovery in sideload mode does (default FAILFAIL)
}

// PackageSpec is one package of a device template.
type PackageSpec struct {
	Name        string          `yaml:"name"`
	APK         string          `yaml:"apk"`        // host path (relative to the scenario) or "@ref" for supplied bytes
	System      string          `yaml:"system"`     // code path directory of a system copy, e.g. /product/app/Max
	APKName     string          `yaml:"apkName"`    // file name in System (default: last element of System + ".apk")
	Privileged  bool            `yaml:"privileged"` // a priv-app
	Update      *UpdateSpec     `yaml:"update"`     // a copy installed over it in /data/app
	VersionCode int64           `yaml:"versionCode"`
	VersionName string          `yaml:"versionName"`
	MinSDK      int             `yaml:"minSdk"`
	TargetSDK   int             `yaml:"targetSdk"`
	Permissions []string        `yaml:"permissions"` // requested; default: the manifest's
	Installed   *bool           `yaml:"installed"`   // for user 0 (default true)
	Enabled     int             `yaml:"enabled"`     // for user 0: 0..4
	Granted     []string        `yaml:"granted"`     // runtime permissions granted to user 0
	UserStates  map[int]UserSet `yaml:"userStates"`  // other users (or user 0 in full)
	Installer   string          `yaml:"installer"`
}

// UpdateSpec is an update of a system app, installed under /data/app.
type UpdateSpec struct {
	APK         string `yaml:"apk"`
	VersionCode int64  `yaml:"versionCode"`
	VersionName string `yaml:"versionName"`
	Installer   string `yaml:"installer"`
}

// UserSet is a package's state for one user.
type UserSet struct {
	Installed bool     `yaml:"installed"`
	Enabled   int      `yaml:"enabled"`
	Granted   []string `yaml:"granted"`
}

// FileSpec is a file on the device.
type FileSpec struct {
	Path    string `yaml:"path"`
	Content string `yaml:"content"`
	From    string `yaml:"from"`
	Mode    uint32 `yaml:"mode"`
}

// PartitionSpec is a fastboot partition.
type PartitionSpec struct {
	Name     string `yaml:"name"`
	Size     string `yaml:"size"` // bytes, or with K/M/G (KiB/MiB/GiB)
	Type     string `yaml:"type"`
	Logical  bool   `yaml:"logical"`
	Contents string `yaml:"contents"`
}

// FaultSpec is the YAML form of Faults.
type FaultSpec struct {
	Offline                bool   `yaml:"offline"`
	BytesPerSecond         string `yaml:"bytesPerSecond"` // e.g. 2M
	DropAfterBytes         string `yaml:"dropAfterBytes"`
	DropOnCommand          string `yaml:"dropOnCommand"`
	RebootAfter            string `yaml:"rebootAfter"` // Go duration
	RebootDelay            string `yaml:"rebootDelay"`
	FastbootDropAfterBytes string `yaml:"fastbootDropAfterBytes"`
	FastbootFailFlash      string `yaml:"fastbootFailFlash"`
	FastbootMaxDownload    string `yaml:"fastbootMaxDownloadSize"` // e.g. 4K: a bootloader with too small a buffer
	RebootWrongMode        bool   `yaml:"rebootWrongMode"`         // reboot fastboot lands in the bootloader, and the other way
}

// LoadScenario reads and validates a scenario file. Its problems come as a *ScenarioError, each
// "<path>:<line>: <field>: what is wrong; what is allowed".
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return parseScenario(b, filepath.Dir(path), path)
}

// ParseScenario decodes a scenario; dir resolves relative paths. Problems are reported by line.
func ParseScenario(b []byte, dir string) (*Scenario, error) {
	return parseScenario(b, dir, "")
}

func parseScenario(b []byte, dir, file string) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		// A YAML syntax error: yaml.v3 says "yaml: line N: ...".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, after
				}
			}
		}
		return nil, newScenarioError(file, []problem{{line, "not valid YAML: " + msg}})
	}
	if len(root.Content) == 0 {
		return nil, newScenarioError(file, []problem{{0, "empty scenario: list at least one device template under devices:"}})
	}
	doc := root.Content[0]
	var problems []problem
	checkNode(doc, reflect.TypeOf(Scenario{}), "", &problems)
	// Decode ignores unknown fields (checkNode reported them), so with only those wrong the
	// values are still judged below and every problem is reported at once.
	var s Scenario
	if err := doc.Decode(&s); err != nil {
		if len(problems) == 0 {
			problems = append(problems, problem{doc.Line, err.Error()})
		}
		return nil, newScenarioError(file, problems)
	}
	keyLine := func(key string) int {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == key {
				return doc.Content[i].Line
			}
		}
		return doc.Line
	}
	if s.APIVersion != "" && s.APIVersion != "provkit.dev/v1" {
		problems = append(problems, problem{keyLine("apiVersion"), fmt.Sprintf("apiVersion: %q: use provkit.dev/v1", s.APIVersion)})
	}
	if s.Kind != "" && s.Kind != "SimulatorScenario" {
		problems = append(problems, problem{keyLine("kind"), fmt.Sprintf("kind: %q: use SimulatorScenario", s.Kind)})
	}
	if len(s.Devices) == 0 {
		problems = append(problems, problem{keyLine("devices"), "devices: none: list at least one device template under devices:"})
	}
	var devNodes []*yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "devices" && doc.Content[i+1].Kind == yaml.SequenceNode {
			devNodes = doc.Content[i+1].Content
		}
	}
	s.dir = dir
	for i := range s.Devices {
		if err := s.Devices[i].validate(); err != nil {
			line := 0
			if i < len(devNodes) {
				line = lineOf(devNodes[i], err.Error())
			}
			problems = append(problems, problem{line, fmt.Sprintf("devices[%d].%v", i, err)})
		}
	}
	if len(problems) > 0 {
		return nil, newScenarioError(file, problems)
	}
	return &s, nil
}

func (ds *DeviceSpec) sdk() (int, error) {
	switch {
	case ds.SDK != 0:
		return ds.SDK, nil
	case ds.Android != 0:
		sdk := map[int]int{10: 29, 11: 30, 12: 31, 13: 33, 14: 34, 15: 35}[ds.Android]
		if sdk == 0 {
			return 0, fmt.Errorf("android: %d: supported releases are 10 to 15", ds.Android)
		}
		return sdk, nil
	}
	return 34, nil
}

func (ds *DeviceSpec) validate() error {
	sdk, err := ds.sdk()
	if err != nil {
		return err
	}
	if sdk < android.MinSDK || sdk > android.MaxSDK {
		return fmt.Errorf("sdk: %d: supported API levels are %d to %d", sdk, android.MinSDK, android.MaxSDK)
	}
	switch AuthMode(ds.Auth) {
	case "", AuthTrusted, AuthAny, AuthKeys, AuthRefuse, AuthNone:
	default:
		return fmt.Errorf("auth: %q: use trusted (default), any, keys, refuse or none", ds.Auth)
	}
	if _, err := ParseMode(ds.Mode); err != nil {
		return err
	}
	if _, err := ds.Sideload.config(); err != nil {
		return err
	}
	if AuthMode(ds.Auth) == AuthKeys && len(ds.AuthorizedKeys) == 0 {
		return errors.New("auth: keys needs authorizedKeys")
	}
	seen := map[string]bool{}
	for i, p := range ds.Packages {
		if p.Name == "" {
			return fmt.Errorf("packages[%d]: name is required", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("packages[%d]: %s listed twice", i, p.Name)
		}
		seen[p.Name] = true
		if p.System != "" && !strings.HasPrefix(p.System, "/") {
			return fmt.Errorf("packages[%d]: system: %q must be an absolute directory like /product/app/Name", i, p.System)
		}
		if part := android.PartitionOf(p.System); p.System != "" && (part == "" || part == "data") {
			return fmt.Errorf("packages[%d]: system: %q is not on a system partition (system, system_ext, product, vendor, odm)", i, p.System)
		}
		if p.System == "" && p.Update != nil {
			return fmt.Errorf("packages[%d]: update: only a system app (system: set) can carry an update", i)
		}
		if p.Enabled < 0 || p.Enabled > 4 {
			return fmt.Errorf("packages[%d]: enabled: %d, use 0 (default) to 4 (disabled-until-used)", i, p.Enabled)
		}
	}
	for i, ps := range ds.Partitions {
		if ps.Name == "" {
			return fmt.Errorf("partitions[%d]: name is required", i)
		}
		if _, err := parseSize(ps.Size); err != nil {
			return fmt.Errorf("partitions[%d]: size: %w", i, err)
		}
	}
	if _, err := ds.Faults.faults(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// parseSize parses "1234", "64K", "16M", "2G" (binary units).
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<42)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or a number with K, M or G)", s)
	}
	return n * mult, nil
}

func (f FaultSpec) faults() (Faults, error) {
	out := Faults{Offline: f.Offline, DropOnCommand: f.DropOnCommand, FastbootFailFlash: f.FastbootFailFlash, RebootWrongMode: f.RebootWrongMode}
	var err error
	size := func(s string) int64 {
		if s == "" || err != nil {
			return 0
		}
		var n int64
		n, err = parseSize(s)
		return n
	}
	dur := func(s string) time.Duration {
		if s == "" || err != nil {
			return 0
		}
		var d time.Duration
		d, err = time.ParseDuration(s)
		if err == nil && d < 0 {
			err = fmt.Errorf("negative duration %q", s)
		}
		return d
	}
	out.BytesPerSecond = size(f.BytesPerSecond)
	out.FastbootMaxDownload = size(f.FastbootMaxDownload)
	out.DropAfterBytes = size(f.DropAfterBytes)
	out.FastbootDropAfter = size(f.FastbootDropAfterBytes)
	out.RebootAfter = dur(f.RebootAfter)
	out.RebootDelay = dur(f.RebootDelay)
	return out, err
}

// serialFor returns device i's serial for a template.
func serialFor(tmpl string, i, uses int) string {
	switch {
	case tmpl == "":
		return fmt.Sprintf("SIM%04d", i+1)
	case strings.Contains(tmpl, "%"):
		return fmt.Sprintf(tmpl, i+1)
	case uses > 1:
		return fmt.Sprintf("%s-%d", tmpl, i+1)
	}
	return tmpl
}

func (s *Scenario) path(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "@") {
		return p
	}
	return filepath.Join(s.dir, p)
}

// build creates the configuration and Android state of device i.
func (s *Scenario) build(i, total int) (DeviceConfig, *android.Device, error) {
	ds := s.Devices[i%len(s.Devices)]
	uses := (total + len(s.Devices) - 1 - i%len(s.Devices)) / len(s.Devices)
	serial := serialFor(ds.Serial, i, uses)
	sdk, _ := ds.sdk()
	ad, err := android.NewDevice(sdk)
	if err != nil {
		return DeviceConfig{}, nil, err
	}
	cfg := DeviceConfig{
		Serial: serial, Product: or(ds.Product, "sim_phone"), Model: or(ds.Model, "Simulated Phone"), Device: or(ds.Device, "sim"),
		Features: DefaultFeatures, Unlocked: ds.Unlocked == nil || *ds.Unlocked, Slotted: ds.Slotted == nil || *ds.Slotted,
	}
	if ds.Features != nil {
		cfg.Features = ds.Features
	}
	cfg.Auth.Mode = AuthMode(or(ds.Auth, string(AuthTrusted)))
	cfg.Mode, _ = ParseMode(ds.Mode)
	cfg.Sideload, _ = ds.Sideload.config()
	for _, k := range ds.AuthorizedKeys {
		text := k
		if !strings.Contains(k, " ") && !strings.HasPrefix(k, "QAAAA") {
			b, err := os.ReadFile(s.path(k))
			if err != nil {
				return cfg, nil, fmt.Errorf("device %s: authorizedKeys: %w", serial, err)
			}
			text = string(b)
		}
		pub, _, err := wire.ParsePublicKey(strings.TrimSpace(text))
		if err != nil {
			return cfg, nil, fmt.Errorf("device %s: authorizedKeys: %w", serial, err)
		}
		cfg.Auth.Keys = append(cfg.Auth.Keys, pub)
	}
	if cfg.Faults, err = ds.Faults.faults(); err != nil {
		return cfg, nil, err
	}
	release := map[int]string{29: "10", 30: "11", 31: "12", 32: "12", 33: "13", 34: "14", 35: "15"}[sdk]
	defaults := map[string]string{
		"ro.product.name": cfg.Product, "ro.product.model": cfg.Model, "ro.product.device": cfg.Device,
		"ro.product.brand": "provkit", "ro.product.manufacturer": "provkit", "ro.serialno": serial,
		"ro.build.fingerprint":     fmt.Sprintf("provkit/%s/%s:%s/SIM%d.240101.001/1:user/release-keys", cfg.Product, cfg.Device, release, sdk),
		"ro.build.type":            "user",
		"ro.build.tags":            "release-keys",
		"ro.debuggable":            "0",
		"ro.secure":                "1",
		"ro.adb.secure":            "1",
		"ro.boot.slot_suffix":      "",
		"sys.boot_completed":       "1",
		"ro.build.version.sdk":     strconv.Itoa(sdk),
		"ro.build.version.release": release,
	}
	if cfg.Slotted {
		defaults["ro.boot.slot_suffix"] = "_a"
	}
	for k, v := range defaults {
		ad.SetProp(k, v)
	}
	for k, v := range ds.Properties {
		ad.SetProp(k, v)
	}
	for ns, kv := range ds.Settings {
		for k, v := range kv {
			ad.SetSetting(ns, k, v)
		}
	}
	ad.SetUsers(ds.Users)
	for _, f := range ds.Files {
		var err error
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if f.From != "" {
			err = ad.FS().LinkHostFile(f.Path, s.path(f.From), os.FileMode(mode), time.Now())
		} else {
			err = ad.FS().WriteFile(f.Path, []byte(f.Content), os.FileMode(mode), time.Now())
		}
		if err != nil {
			return cfg, nil, fmt.Errorf("device %s: files: %w", serial, err)
		}
	}
	for _, ps := range ds.Packages {
		if err := s.addPackage(ad, ps); err != nil {
			return cfg, nil, fmt.Errorf("device %s: package %s: %w", serial, ps.Name, err)
		}
	}
	for _, ps := range ds.Partitions {
		n, _ := parseSize(ps.Size)
		cfg.Partitions = append(cfg.Partitions, PartitionConfig{Name: ps.Name, Size: n, Type: ps.Type, Logical: ps.Logical, Contents: s.path(ps.Contents)})
	}
	return cfg, ad, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// apkBytes reads an APK given by path or "@ref"; ok is false when none is given.
func (s *Scenario) apk(ref string) (data []byte, hostPath string, err error) {
	switch {
	case ref == "":
		return nil, "", nil
	case strings.HasPrefix(ref, "@"):
		b, ok := s.apks[ref[1:]]
		if !ok {
			return nil, "", fmt.Errorf("apk %q: no APK supplied under that name", ref)
		}
		return b, "", nil
	}
	p := s.path(ref)
	f, err := os.Open(p)
	if err != nil {
		return nil, "", fmt.Errorf("apk: %w", err)
	}
	defer f.Close()
	// Only the manifest is read here; the bytes stay in the host file.
	return nil, p, nil
}

func (s *Scenario) readInfo(data []byte, hostPath string) (android.APKInfo, error) {
	if hostPath != "" {
		f, err := os.Open(hostPath)
		if err != nil {
			return android.APKInfo{}, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return android.APKInfo{}, err
		}
		return android.ReadAPKInfo(f, st.Size())
	}
	return android.ReadAPKInfo(bytes.NewReader(data), int64(len(data)))
}

func (s *Scenario) place(ad *android.Device, path string, data []byte, hostPath string, t time.Time) error {
	if hostPath != "" {
		return ad.FS().LinkHostFile(path, hostPath, 0o644, t)
	}
	if data == nil {
		data = []byte{}
	}
	return ad.FS().WriteFile(path, data, 0o644, t)
}

func (s *Scenario) addPackage(ad *android.Device, ps PackageSpec) error {
	data, hostPath, err := s.apk(ps.APK)
	if err != nil {
		return err
	}
	info := android.APKInfo{Package: ps.Name, VersionCode: 1, VersionName: "1", MinSDK: 24, TargetSDK: ad.SDK()}
	hasAPK := data != nil || hostPath != ""
	if hasAPK {
		if info, err = s.readInfo(data, hostPath); err != nil {
			return err
		}
		if info.Package != ps.Name {
			return fmt.Errorf("apk is package %s, not %s", info.Package, ps.Name)
		}
	}
	if ps.VersionCode != 0 {
		info.VersionCode = ps.VersionCode
	}
	if ps.VersionName != "" {
		info.VersionName = ps.VersionName
	}
	if ps.MinSDK != 0 {
		info.MinSDK = ps.MinSDK
	}
	if ps.TargetSDK != 0 {
		info.TargetSDK = ps.TargetSDK
	}
	perms := info.Permissions
	if ps.Permissions != nil {
		perms = ps.Permissions
	}
	p := &android.Package{Name: ps.Name, Privileged: ps.Privileged, Requested: perms}
	epoch := time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(dir, name string, installer string, t time.Time) *android.Install {
		return &android.Install{CodePath: dir, APK: name, VersionCode: info.VersionCode, VersionName: info.VersionName,
			MinSDK: info.MinSDK, TargetSDK: info.TargetSDK, Installer: installer, Time: t}
	}
	if ps.System != "" {
		dir := android.Clean(ps.System)
		name := ps.APKName
		if name == "" {
			name = filepath.Base(dir) + ".apk"
		}
		p.System = mk(dir, name, "", epoch)
		if err := s.place(ad, dir+"/"+name, data, hostPath, epoch); err != nil {
			return err
		}
		if ps.Update != nil {
			udata, uhost, err := s.apk(ps.Update.APK)
			if err != nil {
				return err
			}
			uinfo := info
			if udata != nil || uhost != "" {
				if uinfo, err = s.readInfo(udata, uhost); err != nil {
					return fmt.Errorf("update: %w", err)
				}
			} else {
				udata, uhost = data, hostPath
			}
			// The update reports the versionCode of the APK it holds (the system copy's bytes
			// and versionCode when it names none), so what a device says agrees with what is
			// pulled from it, unless the scenario sets versionCode to make them disagree.
			if ps.Update.VersionCode != 0 {
				uinfo.VersionCode = ps.Update.VersionCode
			}
			if ps.Update.VersionName != "" {
				uinfo.VersionName = ps.Update.VersionName
			}
			t := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			dir := updateDir(ad.SDK(), ps.Name)
			p.Update = &android.Install{CodePath: dir, APK: "base.apk", VersionCode: uinfo.VersionCode, VersionName: uinfo.VersionName,
				MinSDK: uinfo.MinSDK, TargetSDK: uinfo.TargetSDK, Installer: or(ps.Update.Installer, "com.android.vending"), Time: t}
			if err := s.place(ad, dir+"/base.apk", udata, uhost, t); err != nil {
				return err
			}
		}
	} else {
		dir := updateDir(ad.SDK(), ps.Name)
		t := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		p.Update = mk(dir, "base.apk", or(ps.Installer, "com.android.vending"), t)
		if err := s.place(ad, dir+"/base.apk", data, hostPath, t); err != nil {
			return err
		}
	}
	installed := ps.Installed == nil || *ps.Installed
	u0 := p.User(0)
	u0.Installed, u0.Enabled = installed, ps.Enabled
	for _, g := range ps.Granted {
		u0.Granted[g] = true
	}
	users := make([]int, 0, len(ps.UserStates))
	for u := range ps.UserStates {
		users = append(users, u)
	}
	sort.Ints(users)
	for _, u := range users {
		us := ps.UserStates[u]
		st := p.User(u)
		st.Installed, st.Enabled = us.Installed, us.Enabled
		for _, g := range us.Granted {
			st.Granted[g] = true
		}
	}
	ad.AddPackage(p)
	return nil
}

// updateDir is the /data/app directory of an update, in the layout of the release.
func updateDir(sdk int, pkg string) string {
	if sdk < 30 {
		return "/data/app/" + pkg + "-1"
	}
	return "/data/app/~~" + b64id(pkg+"dir") + "==/" + pkg + "-" + b64id(pkg+"app") + "=="
}

func b64id(s string) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	b := make([]byte, 22)
	for i := range b {
		b[i] = chars[h%64]
		h = h*6364136223846793005 + 1442695040888963407
	}
	return string(b)
}
