// Package config loads aminator's layered YAML configuration: built-in
// defaults, then /etc/aminator, then ~/.aminator, then an optional --config
// file, then AMINATOR_* environment variables, then command-line flags. Maps
// merge and lists replace, as in the original tool. Every file is checked
// against the schema before it is merged, so an unknown key or a bad value
// is reported with the file, the line, the key and what is allowed.
package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/aminator-go/aminator/internal/plugin"
)

//go:embed defaults/aminator.yml
var defaultMain []byte

//go:embed defaults/environments.yml
var defaultEnvironments []byte

// Context holds the per-bake settings; every bake flag can be defaulted here
// under `context:`. The yaml key is the flag's long name with underscores.
type Context struct {
	Environment        string            `yaml:"environment"`
	BaseAMIID          string            `yaml:"base_ami_id"`
	BaseAMIName        string            `yaml:"base_ami_name"`
	Label              string            `yaml:"label"`
	Name               string            `yaml:"name"`
	Suffix             string            `yaml:"suffix"`
	Creator            string            `yaml:"creator"`
	Region             string            `yaml:"region"`
	VMType             string            `yaml:"vm_type"`
	Arch               string            `yaml:"arch"`
	EnhancedNetworking bool              `yaml:"enhanced_networking"`
	ENANetworking      bool              `yaml:"ena_networking"`
	RootVolumeSize     int               `yaml:"root_volume_size"`
	ProvisionerEBSType string            `yaml:"provisioner_ebs_type"`
	RegisterEBSType    string            `yaml:"register_ebs_type"`
	VolumeID           string            `yaml:"volume_id"`
	BlockDevice        string            `yaml:"block_device"`
	Partition          int               `yaml:"partition"`
	Interactive        bool              `yaml:"interactive"`
	PreserveOnError    bool              `yaml:"preserve_on_error"`
	Debug              bool              `yaml:"debug"`
	Tags               map[string]string `yaml:"tags"`
	// Boot tests: the accelerator (auto, kvm or tcg) and how many seconds a
	// boot under KVM may print nothing from its kernel before KVM is taken
	// for broken (0: the default).
	Accel       string `yaml:"accel"`
	KVMWatchdog int    `yaml:"kvm_watchdog"`
	// ExpectHTTP lists guest ports a boot test forwards to the host's
	// loopback and waits on until each answers HTTP with a status below 500.
	ExpectHTTP []int `yaml:"expect_http"`
	// Like is how a boot test launches the image: ec2 (firmware, NVMe,
	// metadata, ssh), kernel (direct kernel boot and a marker) or "" (ec2
	// when the disk has a boot loader). TestBootMode picks the firmware of
	// a disk that boots both ways (default uefi); SSHUser is the login
	// (default admin); BootTimeout bounds the boot in seconds (0: 5 min).
	Like         string `yaml:"like"`
	TestBootMode string `yaml:"test_boot_mode"`
	SSHUser      string `yaml:"ssh_user"`
	BootTimeout  int    `yaml:"boot_timeout"`
	// Registration attributes.
	BootMode       string `yaml:"boot_mode"`
	TPMSupport     bool   `yaml:"tpm_support"`
	IMDSv2Required bool   `yaml:"imds_v2_required"`
	// Distribution: regions to copy to, accounts, organisations and OUs to
	// share with, and when to deprecate.
	CopyTo      []string `yaml:"copy_to"`
	ShareWith   []string `yaml:"share_with"`
	ShareOrgs   []string `yaml:"share_with_orgs"`
	ShareOUs    []string `yaml:"share_with_ous"`
	DeprecateAt string   `yaml:"deprecate_at"`
	// CopyKMSKeys maps a region to the KMS key its copy is encrypted with.
	CopyKMSKeys map[string]string `yaml:"copy_kms_keys"`
	// LogFormat is the console's: auto (for a person on a terminal, text
	// elsewhere), text (key=value) or json.
	LogFormat string `yaml:"log_format"`
	// ScriptNetwork lets package scripts use the network (issue 10).
	ScriptNetwork bool `yaml:"script_network"`
	// KeepPartial keeps the images of the architectures that baked when
	// another of the same request (arch: x86_64,arm64) failed.
	KeepPartial bool `yaml:"keep_partial"`
}

// Config is the merged configuration.
type Config struct {
	Context  Context `yaml:"context"`
	StateDir string  `yaml:"state_dir"`
	LogDir   string  `yaml:"log_dir"`
	LockDir  string  `yaml:"lock_dir"`
	// StoreFS says where the local cloud keeps volumes and snapshots: auto
	// (a reflink filesystem in a loop file under the state directory, made
	// by the first command that needs the store, when the state directory's
	// filesystem has no reflinks and the kernel has xfs or btrfs), xfs or
	// btrfs (the same, with that filesystem), or none (the state directory
	// as it is).
	StoreFS string `yaml:"store_fs"`
	// Plugins holds each plugin's settings under "kind.name".
	Plugins map[string]map[string]any `yaml:"plugins"`
	// Download is how a package URL is downloaded (issue 12).
	Download Download `yaml:"download"`
	// Binfmt is how a bake of another architecture's image (arm64 on an
	// x86_64 host) runs its package's code: under qemu-user, through a
	// binfmt_misc handler (issue 20).
	Binfmt Binfmt `yaml:"binfmt"`
	// Attest is how images' provenance is signed and verified (issue 21).
	Attest Attest `yaml:"attest"`

	// Environments maps an environment name to its plugin per kind.
	Environments map[string]map[plugin.Kind]string `yaml:"-"`
	// DefaultEnvironment is environments.yml's `default:`.
	DefaultEnvironment string `yaml:"-"`
	// Sources lists the files that were read, in order.
	Sources []string `yaml:"-"`
	// ExtraFile is the --config file (absolute), "" if none: a background
	// pool refill reads it too.
	ExtraFile string `yaml:"-"`

	origin map[string]string
}

// Error is a configuration problem; the CLI exits 2 for it.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Options say where to look.
type Options struct {
	// SystemDir defaults to $AMINATOR_CONFIG_DIR or /etc/aminator.
	SystemDir string
	// UserDir defaults to ~/.aminator.
	UserDir string
	// Extra is one more aminator.yml layered after the user's (--config).
	Extra string
	// Env is the environment (os.Environ() form); nil means os.Environ().
	Env []string
	// Flags are values given on the command line, by context key.
	Flags map[string]string
}

// SystemDir is where the system-wide files live.
func SystemDir() string {
	if d := os.Getenv("AMINATOR_CONFIG_DIR"); d != "" {
		return d
	}
	return "/etc/aminator"
}

// UserDir is where a user's files live.
func UserDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".aminator")
}

type layer struct {
	name string
	data []byte
}

func readLayers(o Options, base string, builtin []byte, extra string) ([]layer, error) {
	layers := []layer{{name: "built-in " + base, data: builtin}}
	for _, dir := range []string{o.SystemDir, o.UserDir} {
		if dir == "" {
			continue
		}
		for _, p := range []string{filepath.Join(dir, base)} {
			b, err := os.ReadFile(p)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read config: %w", err)
			}
			layers = append(layers, layer{name: p, data: b})
		}
	}
	if extra != "" {
		b, err := os.ReadFile(extra)
		if err != nil {
			return nil, errorf("read config %s: %v", extra, err)
		}
		layers = append(layers, layer{name: extra, data: b})
	}
	return layers, nil
}

// Load reads and validates the whole configuration.
func Load(o Options) (*Config, error) {
	if o.SystemDir == "" {
		o.SystemDir = SystemDir()
	}
	if o.UserDir == "" {
		o.UserDir = UserDir()
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	origin := map[string]string{}
	merged := map[string]any{}
	layers, err := readLayers(o, "aminator.yml", defaultMain, o.Extra)
	if err != nil {
		return nil, err
	}
	// Per-plugin files: /etc/aminator/plugins/<kind>.<name>.yml, as the original.
	for _, dir := range []string{o.SystemDir, o.UserDir} {
		if dir == "" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "plugins", "*.yml"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read config: %w", err)
			}
			key := strings.TrimSuffix(filepath.Base(f), ".yml")
			var n yaml.Node
			if err := yaml.Unmarshal(b, &n); err != nil {
				return nil, errorf("%s: %v", f, err)
			}
			if len(n.Content) == 0 {
				continue
			}
			if err := validatePlugin(f, key, n.Content[0]); err != nil {
				return nil, err
			}
			var m map[string]any
			if err := n.Decode(&m); err != nil {
				return nil, errorf("%s: %v", f, err)
			}
			merge(merged, map[string]any{"plugins": map[string]any{key: m}}, f, "", origin)
		}
	}
	var sources []string
	for _, l := range layers {
		m, err := parseMain(l)
		if err != nil {
			return nil, err
		}
		merge(merged, m, l.name, "", origin)
		sources = append(sources, l.name)
		ctx, _ := m["context"].(map[string]any)
		if err := settleExclusive(merged, given(ctx), l.name, origin); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(merged, o.Env, origin); err != nil {
		return nil, err
	}
	if err := applyFlags(merged, o.Flags, origin); err != nil {
		return nil, err
	}
	cfg := &Config{origin: origin, Sources: sources}
	if o.Extra != "" {
		cfg.ExtraFile, _ = filepath.Abs(o.Extra)
	}
	if err := remarshal(merged, cfg); err != nil {
		return nil, errorf("config: %v", err)
	}
	if err := loadEnvironments(cfg, o); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseMain(l layer) (map[string]any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(l.data, &n); err != nil {
		return nil, errorf("%s: %v", l.name, err)
	}
	if len(n.Content) == 0 {
		return map[string]any{}, nil
	}
	root := n.Content[0]
	if err := validateNode(l.name, root, reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := root.Decode(&m); err != nil {
		return nil, errorf("%s: %v", l.name, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Origin says where the value of a dotted key came from.
func (c *Config) Origin(key string) string {
	if o, ok := c.origin[key]; ok {
		return o
	}
	return "built-in defaults"
}

func remarshal(in any, out any) error {
	b, err := yaml.Marshal(in)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, out)
}

// merge deep-merges src into dst: maps merge, everything else (lists too) replaces.
func merge(dst, src map[string]any, source, prefix string, origin map[string]string) {
	for k, v := range src {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			merge(dm, sm, source, key, origin)
			continue
		}
		dst[k] = v
		origin[key] = source
	}
}

// ContextKeys lists the keys allowed under `context:`.
func ContextKeys() []string { return yamlKeys(reflect.TypeOf(Context{})) }

func contextField(key string) (reflect.StructField, bool) {
	t := reflect.TypeOf(Context{})
	for i := 0; i < t.NumField(); i++ {
		if yamlName(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// setContext stores a string value for a context key, converted to the key's type.
func setContext(merged map[string]any, key, val, source string, origin map[string]string) error {
	f, ok := contextField(key)
	if !ok {
		return errorf("%s: unknown setting %q (allowed: %s)", source, key, strings.Join(ContextKeys(), ", "))
	}
	var v any
	switch f.Type.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return errorf("%s: %s wants true or false, not %q", source, key, val)
		}
		v = b
	case reflect.Int:
		n, err := strconv.Atoi(val)
		if err != nil {
			return errorf("%s: %s wants a whole number, not %q", source, key, val)
		}
		v = n
	case reflect.String:
		v = val
	case reflect.Slice:
		items, err := sliceItems(f.Type.Elem().Kind(), val)
		if err != nil {
			return errorf("%s: %s wants whole numbers, not %q", source, key, val)
		}
		v = items
	default:
		return errorf("%s: %s cannot be set this way", source, key)
	}
	ctx, _ := merged["context"].(map[string]any)
	if ctx == nil {
		ctx = map[string]any{}
		merged["context"] = ctx
	}
	ctx[key] = v
	origin["context."+key] = source
	return nil
}

// sliceItems splits a comma-separated value into a list's items, as whole
// numbers for a list of them.
func sliceItems(elem reflect.Kind, val string) ([]any, error) {
	var items []any
	for _, x := range strings.Split(val, ",") {
		if x = strings.TrimSpace(x); x == "" {
			continue
		}
		if elem != reflect.Int {
			items = append(items, x)
			continue
		}
		n, err := strconv.Atoi(x)
		if err != nil {
			return nil, err
		}
		items = append(items, n)
	}
	return items, nil
}

var topEnv = map[string]string{"AMINATOR_STATE_DIR": "state_dir", "AMINATOR_LOG_DIR": "log_dir", "AMINATOR_LOCK_DIR": "lock_dir", "AMINATOR_STORE_FS": "store_fs"}

// exportedToScripts are the variables a bake sets for the image's scripts;
// they are not settings and are ignored here.
var exportedToScripts = map[string]bool{
	"AMINATOR_PACKAGE": true, "AMINATOR_BASE_AMI_ID": true, "AMINATOR_BASE_AMI_NAME": true,
	"AMINATOR_AMI_NAME": true, "AMINATOR_AMI_SUFFIX": true, "AMINATOR_STORE_TYPE": true,
	"AMINATOR_CONFIG_DIR": true, "AMINATOR_TEST_CACHE": true,
}

func applyEnv(merged map[string]any, env []string, origin map[string]string) error {
	set := map[string]bool{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "AMINATOR_") || exportedToScripts[k] || strings.HasPrefix(k, "_AMINATOR") {
			continue
		}
		if top, ok := topEnv[k]; ok {
			merged[top] = v
			origin[top] = "environment variable " + k
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(k, "AMINATOR_"))
		if _, ok := contextField(key); !ok || key == "tags" {
			continue // not a setting; scripts may use their own AMINATOR_* names
		}
		if err := setContext(merged, key, v, "environment variable "+k, origin); err != nil {
			return err
		}
		set[key] = strings.TrimSpace(v) != ""
	}
	return settleExclusive(merged, set, "the environment", origin)
}

func applyFlags(merged map[string]any, flags map[string]string, origin map[string]string) error {
	keys := make([]string, 0, len(flags))
	set := map[string]bool{}
	for k := range flags {
		keys = append(keys, k)
		set[k] = strings.TrimSpace(flags[k]) != ""
	}
	sort.Strings(keys)
	if err := settleExclusive(merged, set, "the command line", origin); err != nil {
		return err
	}
	for _, k := range keys {
		if top, ok := map[string]string{"state_dir": "state_dir", "log_dir": "log_dir", "lock_dir": "lock_dir", "store_fs": "store_fs"}[k]; ok {
			merged[top] = flags[k]
			origin[top] = "flag --" + strings.ReplaceAll(k, "_", "-")
			continue
		}
		if sub, ok := strings.CutPrefix(k, "attest."); ok && (sub == "signing_key" || sub == "trust_file") {
			// The bakery's key and trust file, which its workers hand their children.
			a, _ := merged["attest"].(map[string]any)
			if a == nil {
				a = map[string]any{}
			}
			a[sub], merged["attest"] = flags[k], a
			origin[k] = "the bakery's " + k
			continue
		}
		if err := setContext(merged, k, flags[k], "flag --"+strings.ReplaceAll(k, "_", "-"), origin); err != nil {
			return err
		}
	}
	return nil
}

// EnvironmentNames lists the configured environments, sorted.
func (c *Config) EnvironmentNames() []string {
	var out []string
	for n := range c.Environments {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// PluginConfig decodes the settings of one plugin over its defaults.
func (c *Config) PluginConfig(kind plugin.Kind, name string) (any, error) {
	reg, ok := plugin.Lookup(kind, name)
	if !ok {
		return nil, errorf("no %s plugin %q (have: %s)", kind, name, strings.Join(plugin.Names(kind), ", "))
	}
	if reg.NewConfig == nil {
		return nil, nil
	}
	out := reg.NewConfig()
	if sec, ok := c.Plugins[string(kind)+"."+name]; ok {
		if err := remarshal(sec, out); err != nil {
			return nil, errorf("plugins.%s.%s: %v", kind, name, err)
		}
	}
	return out, nil
}
