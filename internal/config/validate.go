package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/aminator-go/aminator/internal/plugin"
)

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// inline reports an embedded struct whose keys are the outer struct's own
// (yaml ",inline"), as the settings every distro family shares are in
// each family's.
func inline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "inline")
}

func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if inline(t.Field(i)) {
			out = append(out, yamlKeys(t.Field(i).Type)...)
			continue
		}
		if n := yamlName(t.Field(i)); n != "-" && t.Field(i).IsExported() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// validateNode checks a YAML node against a Go type: unknown keys and values
// of the wrong type are errors naming the file, line, key and what is allowed.
func validateNode(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if path == "plugins" {
		if n.Kind != yaml.MappingNode {
			return errorf("%s:%d: plugins must be a map of kind.name to settings", file, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := validatePlugin(file, n.Content[i].Value, n.Content[i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return errorf("%s:%d: %s must be a map (keys: %s)", file, n.Line, orTop(path), strings.Join(yamlKeys(t), ", "))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByYAML(t, k.Value)
			if !ok {
				return errorf("%s:%d: unknown key %q in %s (allowed: %s)", file, k.Line, join(path, k.Value), orTop(path), strings.Join(yamlKeys(t), ", "))
			}
			if err := validateNode(file, v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return errorf("%s:%d: %s must be a map", file, n.Line, path)
		}
		if t.Elem().Kind() == reflect.Interface {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := validateNode(file, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return errorf("%s:%d: %s must be a list", file, n.Line, path)
		}
		for _, c := range n.Content {
			if err := validateNode(file, c, t.Elem(), path+"[]"); err != nil {
				return err
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return errorf("%s:%d: %s must be a single %s value", file, n.Line, path, kindWord(t))
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			return errorf("%s:%d: %s: %q is not a %s", file, n.Line, path, n.Value, kindWord(t))
		}
	}
	return nil
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true/false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "whole number"
	case reflect.Float64:
		return "number"
	default:
		return "string"
	}
}

func fieldByYAML(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if inline(f) {
			if g, ok := fieldByYAML(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if f.IsExported() && yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// validatePlugin checks one plugin section, keyed "kind.name".
func validatePlugin(file, key string, n *yaml.Node) error {
	kind, name, ok := strings.Cut(key, ".")
	if !ok || !plugin.IsKind(kind) {
		var kinds []string
		for _, k := range plugin.Kinds {
			kinds = append(kinds, string(k))
		}
		return errorf("%s:%d: plugin section %q must be named kind.name (kinds: %s)", file, n.Line, key, strings.Join(kinds, ", "))
	}
	reg, ok := plugin.Lookup(plugin.Kind(kind), name)
	if !ok {
		return errorf("%s:%d: no %s plugin %q (have: %s)", file, n.Line, kind, name, strings.Join(plugin.Names(plugin.Kind(kind)), ", "))
	}
	if reg.NewConfig == nil {
		if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
			return errorf("%s:%d: plugin %s takes no settings", file, n.Line, key)
		}
		return nil
	}
	return validateNode(file, n, reflect.TypeOf(reg.NewConfig()), "plugins."+key)
}

func loadEnvironments(c *Config, o Options) error {
	layers, err := readLayers(o, "environments.yml", defaultEnvironments, "")
	if err != nil {
		return err
	}
	c.Environments = map[string]map[plugin.Kind]string{}
	for _, l := range layers {
		var n yaml.Node
		if err := yaml.Unmarshal(l.data, &n); err != nil {
			return errorf("%s: %v", l.name, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind != yaml.MappingNode {
			return errorf("%s:%d: environments must be a map of name to plugins", l.name, root.Line)
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.Value == "default" {
				if v.Kind != yaml.ScalarNode {
					return errorf("%s:%d: default must name an environment", l.name, v.Line)
				}
				c.DefaultEnvironment = v.Value
				c.origin["environments.default"] = l.name
				continue
			}
			if v.Kind != yaml.MappingNode {
				return errorf("%s:%d: environment %q must map plugin kinds to plugin names", l.name, v.Line, k.Value)
			}
			env := c.Environments[k.Value]
			if env == nil {
				env = map[plugin.Kind]string{}
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				kk, vv := v.Content[j], v.Content[j+1]
				if !plugin.IsKind(kk.Value) {
					var kinds []string
					for _, x := range plugin.Kinds {
						kinds = append(kinds, string(x))
					}
					return errorf("%s:%d: environment %q: unknown plugin kind %q (allowed: %s)", l.name, kk.Line, k.Value, kk.Value, strings.Join(kinds, ", "))
				}
				kind := plugin.Kind(kk.Value)
				if _, ok := plugin.Lookup(kind, vv.Value); !ok {
					return errorf("%s:%d: environment %q: no %s plugin %q (have: %s)", l.name, vv.Line, k.Value, kind, vv.Value, strings.Join(plugin.Names(kind), ", "))
				}
				env[kind] = vv.Value
			}
			c.Environments[k.Value] = env
		}
	}
	for name, env := range c.Environments {
		for _, kind := range plugin.Kinds {
			if env[kind] == "" {
				return errorf("environment %q names no %s plugin (every environment needs: cloud, blockdevice, volume, distro, provisioner, finalizer)", name, kind)
			}
		}
	}
	if _, ok := c.Environments[c.DefaultEnvironment]; !ok {
		return errorf("%s: default environment %q is not defined", c.Origin("environments.default"), c.DefaultEnvironment)
	}
	return nil
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	suffixRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{0,64}$`)
	tagKeyRE  = regexp.MustCompile(`^[A-Za-z0-9 _.:/=+@-]{1,128}$`)
)

func (c *Config) bad(key, format string, a ...any) error {
	return errorf("%s: %s: %s", c.Origin(key), key, fmt.Sprintf(format, a...))
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (c *Config) validate() error {
	if err := c.checkDownload(); err != nil {
		return err
	}
	if err := c.checkAttest(); err != nil {
		return err
	}
	x := &c.Context
	if !oneOf(x.VMType, "hvm", "paravirtual") {
		return c.bad("context.vm_type", "%q is not allowed (allowed: hvm, paravirtual)", x.VMType)
	}
	if x.LogFormat != "" && !oneOf(x.LogFormat, "auto", "text", "json") {
		return c.bad("context.log_format", "%q is not allowed (allowed: auto, text, json)", x.LogFormat)
	}
	if x.Accel != "" && !oneOf(x.Accel, "auto", "kvm", "tcg") {
		return c.bad("context.accel", "%q is not allowed (allowed: auto, kvm, tcg)", x.Accel)
	}
	if x.KVMWatchdog < 0 {
		return c.bad("context.kvm_watchdog", "%d: seconds, 0 or more", x.KVMWatchdog)
	}
	if x.Like != "" && !oneOf(x.Like, "ec2", "kernel") {
		return c.bad("context.like", "%q is not allowed (allowed: ec2, kernel)", x.Like)
	}
	if x.TestBootMode != "" && !oneOf(x.TestBootMode, "legacy-bios", "uefi") {
		return c.bad("context.test_boot_mode", "%q is not allowed (allowed: legacy-bios, uefi)", x.TestBootMode)
	}
	if x.SSHUser != "" && !sshUserRE.MatchString(x.SSHUser) {
		return c.bad("context.ssh_user", "%q is not a user name", x.SSHUser)
	}
	if x.BootTimeout < 0 {
		return c.bad("context.boot_timeout", "%d: seconds, 0 or more", x.BootTimeout)
	}
	for _, p := range x.ExpectHTTP {
		if p < 1 || p > 65535 {
			return c.bad("context.expect_http", "%d is not a TCP port (1-65535)", p)
		}
	}
	if x.Label != "" && !oneOf(x.Label, "candidate", "release", "previous") {
		return c.bad("context.label", "%q is not allowed (allowed: candidate, release, previous)", x.Label)
	}
	if err := checkArches(x.Arch); err != nil {
		return c.bad("context.arch", "%v", err)
	}
	if (x.ENANetworking || x.EnhancedNetworking) && x.VMType != "hvm" {
		return c.bad("context.vm_type", "ENA and enhanced networking need vm_type hvm")
	}
	if x.BootMode != "" && !oneOf(x.BootMode, "legacy-bios", "uefi", "uefi-preferred") {
		return c.bad("context.boot_mode", "%q is not allowed (allowed: legacy-bios, uefi, uefi-preferred)", x.BootMode)
	}
	if x.DeprecateAt != "" {
		if _, err := time.Parse(time.RFC3339, x.DeprecateAt); err != nil {
			return c.bad("context.deprecate_at", "%q is not a time like 2027-01-31T00:00:00Z", x.DeprecateAt)
		}
	}
	for _, r := range x.CopyTo {
		if !regionRE.MatchString(r) {
			return c.bad("context.copy_to", "%q is not a region name like us-west-2", r)
		}
	}
	for _, a := range x.ShareWith {
		if !accountRE.MatchString(a) {
			return c.bad("context.share_with", "%q is not a 12-digit AWS account id", a)
		}
	}
	if x.RootVolumeSize < 0 || x.RootVolumeSize > 16384 {
		return c.bad("context.root_volume_size", "%d GiB is out of range (0 to 16384)", x.RootVolumeSize)
	}
	if x.Partition < 0 || x.Partition > 128 {
		return c.bad("context.partition", "%d is out of range (0 = whole device, 1 to 128)", x.Partition)
	}
	if !suffixRE.MatchString(x.Suffix) {
		return c.bad("context.suffix", "%q: use letters, digits, '.', '_' or '-' (at most 64)", x.Suffix)
	}
	if strings.TrimSpace(x.Creator) == "" {
		return c.bad("context.creator", "must not be empty")
	}
	for k := range x.Tags {
		if !tagKeyRE.MatchString(k) || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return c.bad("context.tags."+k, "bad tag key (1 to 128 of letters, digits, space and _.:/=+@-; not aws:)")
		}
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return c.bad("state_dir", "%q must be an absolute path", c.StateDir)
	}
	if c.LogDir == "" || !filepath.IsAbs(c.LogDir) {
		return c.bad("log_dir", "%q must be an absolute path", c.LogDir)
	}
	if !oneOf(c.StoreFS, "auto", "none", "xfs", "btrfs") {
		return c.bad("store_fs", "%q is not allowed (allowed: auto, none, xfs, btrfs)", c.StoreFS)
	}
	if c.LockDir != "" && !filepath.IsAbs(c.LockDir) {
		return c.bad("lock_dir", "%q must be an absolute path", c.LockDir)
	}
	if c.LockDir == "" {
		c.LockDir = filepath.Join(c.StateDir, "lock")
	}
	envName := x.Environment
	if envName == "" {
		envName = c.DefaultEnvironment
		x.Environment = envName
	}
	if _, ok := c.Environments[envName]; !ok {
		return c.bad("context.environment", "no environment %q (have: %s)", envName, strings.Join(c.EnvironmentNames(), ", "))
	}
	return nil
}

// sshUserRE is a user name ssh may be given: no option, no host part.
var sshUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Arches is the architectures a context's arch names, in the order given:
// none, one, or several for a bake of each from one request.
func (x Context) Arches() []string {
	if x.Arch == "" {
		return nil
	}
	return strings.Split(x.Arch, ",")
}

// checkArches checks an arch setting: one architecture, or a list of
// different ones.
func checkArches(arch string) error {
	if arch == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, a := range strings.Split(arch, ",") {
		if !oneOf(a, "x86_64", "arm64", "i386") {
			return fmt.Errorf("%q is not allowed (allowed: x86_64, arm64, i386, or a comma-separated list of them)", a)
		}
		if seen[a] {
			return fmt.Errorf("%q is named twice in %q", a, arch)
		}
		seen[a] = true
	}
	return nil
}

// checkAttest checks the signing settings: a builder id is an absolute
// URI, a KMS key names a key.
func (c *Config) checkAttest() error {
	a := c.Attest
	if a.BuilderID != "" {
		if u, err := url.Parse(a.BuilderID); err != nil || !u.IsAbs() {
			return c.bad("attest.builder_id", "%q is not an absolute URI (like https://bakery.example.com or urn:aminator:bakery:prod)", a.BuilderID)
		}
	}
	if a.SigningKey == KMSPrefix {
		return c.bad("attest.signing_key", "%q names no KMS key (kms:KEY-ID, kms:ARN or kms:alias/NAME)", a.SigningKey)
	}
	if a.S3Bucket != "" && !s3BucketRE.MatchString(a.S3Bucket) {
		return c.bad("attest.s3_bucket", "%q is not an S3 bucket name (3 to 63 lower-case letters, digits, '.' or '-')", a.S3Bucket)
	}
	if p := a.S3Prefix; strings.HasPrefix(p, "/") || strings.Contains(p, "//") || len(p) > 512 {
		return c.bad("attest.s3_prefix", "%q is not a key prefix (no leading '/', no '//', at most 512 characters)", p)
	}
	return nil
}

var s3BucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
