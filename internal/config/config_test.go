package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"

	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/apt"
)

type dirs struct{ sys, user string }

func setup(t *testing.T, sys, user map[string]string) dirs {
	t.Helper()
	d := dirs{t.TempDir(), t.TempDir()}
	for base, files := range map[string]map[string]string{d.sys: sys, d.user: user} {
		for name, content := range files {
			p := filepath.Join(base, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

func load(t *testing.T, d dirs, env []string, flags map[string]string) (*config.Config, error) {
	t.Helper()
	if env == nil {
		env = []string{}
	}
	return config.Load(config.Options{SystemDir: d.sys, UserDir: d.user, Env: env, Flags: flags})
}

func TestDefaults(t *testing.T) {
	c, err := load(t, setup(t, nil, nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Context.Creator != "aminator" || c.Context.VMType != "hvm" || c.StateDir != "/var/lib/aminator" || c.LogDir != "/var/log/aminator" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Context.Environment != "local_apt_linux" || c.LockDir != "/var/lib/aminator/lock" {
		t.Errorf("environment %q lock dir %q", c.Context.Environment, c.LockDir)
	}
	if c.StoreFS != "auto" {
		t.Errorf("store_fs %q, want auto", c.StoreFS)
	}
	for _, o := range []struct {
		env   []string
		flags map[string]string
		want  string
	}{{[]string{"AMINATOR_STORE_FS=none"}, nil, "none"}, {[]string{"AMINATOR_STORE_FS=none"}, map[string]string{"store_fs": "xfs"}, "xfs"}} {
		c, err := load(t, setup(t, nil, nil), o.env, o.flags)
		if err != nil {
			t.Fatal(err)
		}
		if c.StoreFS != o.want {
			t.Errorf("store_fs from %v %v: %q, want %q", o.env, o.flags, c.StoreFS, o.want)
		}
	}
}

// Layers: built-in < system < user < environment variables < flags; maps
// merge and lists replace.
func TestLayering(t *testing.T) {
	d := setup(t, map[string]string{
		"aminator.yml": "context:\n  creator: system\n  suffix: sys\n  region: r-sys\n  tags: {a: sys, b: sys}\nplugins:\n  distro.debian:\n    short_circuit_files: [/a, /b]\n",
	}, map[string]string{
		"aminator.yml": "context:\n  creator: user\n  tags: {b: user}\nplugins:\n  distro.debian:\n    short_circuit_files: [/c]\n",
	})
	c, err := load(t, d, []string{"AMINATOR_SUFFIX=env", "AMINATOR_REGION=r-env", "AMINATOR_PACKAGE=ignored"}, map[string]string{"region": "r-flag"})
	if err != nil {
		t.Fatal(err)
	}
	x := c.Context
	if x.Creator != "user" || x.Suffix != "env" || x.Region != "r-flag" {
		t.Errorf("precedence: creator %q suffix %q region %q", x.Creator, x.Suffix, x.Region)
	}
	if x.Tags["a"] != "sys" || x.Tags["b"] != "user" {
		t.Errorf("maps must merge: %v", x.Tags)
	}
	if got := c.Origin("context.creator"); got != filepath.Join(d.user, "aminator.yml") {
		t.Errorf("origin %q", got)
	}
	pc, err := c.PluginConfig("distro", "debian")
	if err != nil {
		t.Fatal(err)
	}
	if got := pc.(*debian.Settings).ShortCircuitFiles; len(got) != 1 || got[0] != "/c" {
		t.Errorf("lists must replace: %q", got)
	}
}

func TestPluginFiles(t *testing.T) {
	d := setup(t, map[string]string{"plugins/provisioner.apt.yml": "update_retries: 7\n"}, nil)
	c, err := load(t, d, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := c.PluginConfig("provisioner", "apt")
	if got := pc.(*apt.Settings).UpdateRetries; got != 7 {
		t.Errorf("plugin file not applied: update_retries %d", got)
	}
	d = setup(t, map[string]string{"plugins/provisioner.apt.yml": "update_retrys: 7\n"}, nil)
	_, err = load(t, d, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "provisioner.apt.yml:1") || !strings.Contains(err.Error(), "update_retries") {
		t.Errorf("unknown plugin key: %v", err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sys, envs string
		env       []string
		flags     map[string]string
		want      []string
	}{
		{name: "unknown top key", sys: "contxt: {}\n", want: []string{"aminator.yml:1", `unknown key "contxt"`, "allowed: attest, binfmt, context, download, lock_dir, log_dir, plugins, state_dir, store_fs"}},
		{name: "builder id not a URI", sys: "attest:\n  builder_id: my bakery\n", want: []string{"aminator.yml", "attest.builder_id", "not an absolute URI"}},
		{name: "attest bucket", sys: "attest:\n  s3_bucket: My_Bucket\n", want: []string{"aminator.yml", "attest.s3_bucket", "not an S3 bucket name"}},
		{name: "attest prefix", sys: "attest:\n  s3_prefix: /abs/\n", want: []string{"aminator.yml", "attest.s3_prefix", "not a key prefix"}},
		{name: "kms key unnamed", sys: "attest:\n  signing_key: 'kms:'\n", want: []string{"aminator.yml", "attest.signing_key", "names no KMS key"}},
		{name: "unknown context key", sys: "context:\n  creater: x\n", want: []string{"aminator.yml:2", "context.creater", "allowed:", "creator"}},
		{name: "bad type", sys: "context:\n  root_volume_size: big\n", want: []string{"aminator.yml:2", "root_volume_size", "whole number"}},
		{name: "bad vm type", sys: "context:\n  vm_type: xen\n", want: []string{"aminator.yml", "context.vm_type", "allowed: hvm, paravirtual"}},
		{name: "bad env value", env: []string{"AMINATOR_PARTITION=two"}, want: []string{"AMINATOR_PARTITION", "whole number"}},
		{name: "bad flag", flags: map[string]string{"arch": "sparc"}, want: []string{"flag --arch", "allowed: x86_64, arm64, i386"}},
		{name: "bad arch in a list", flags: map[string]string{"arch": "x86_64,sparc"}, want: []string{"flag --arch", `"sparc" is not allowed`}},
		{name: "an arch twice", flags: map[string]string{"arch": "arm64,arm64"}, want: []string{"flag --arch", `"arm64" is named twice`}},
		{name: "unknown plugin", sys: "plugins:\n  cloud.gce: {}\n", want: []string{"aminator.yml:2", `no cloud plugin "gce"`, "have: ec2, local"}},
		{name: "bad plugin section", sys: "plugins:\n  clouds.local: {}\n", want: []string{"kind.name"}},
		{name: "env with missing plugin", envs: "mine:\n  cloud: local\n  blockdevice: loop\n  volume: linux\n  distro: suse\n  provisioner: apt\n  finalizer: tagging_ebs\n", want: []string{"environments.yml:5", `no distro plugin "suse"`, "have: debian, redhat"}},
		{name: "env missing a kind", envs: "mine:\n  cloud: local\n", want: []string{`environment "mine" names no blockdevice plugin`}},
		{name: "unknown environment", flags: map[string]string{"environment": "nope"}, want: []string{`no environment "nope"`, "local_apt_linux"}},
		{name: "bad store fs", env: []string{"AMINATOR_STORE_FS=ext4"}, want: []string{"AMINATOR_STORE_FS", "store_fs", "allowed: auto, none, xfs, btrfs"}},
		{name: "relative state dir", sys: "state_dir: var/lib\n", want: []string{"state_dir", "absolute"}},
		{name: "bad download allow", sys: "download:\n  allow: ['10.0.0.0/8', 'not a host!']\n", want: []string{"download.allow", `"not a host!" is not a CIDR`}},
		{name: "missing download CA", sys: "download:\n  ca_file: /nonexistent.pem\n", want: []string{"download.ca_file", "no such file"}},
		{name: "bad tag key", sys: "context:\n  tags: {'aws:x': y}\n", want: []string{"context.tags.aws:x"}},
		// The keys every distro family shares are inlined in each family's settings.
		{name: "inlined keys listed", sys: "plugins:\n  distro.debian:\n    short_circut: true\n", want: []string{"aminator.yml:3", "allowed: copy_files, mount_binfmt_misc, policy_file, policy_file_content, root_mount_options, short_circuit,"}},
		{name: "inlined key checked", sys: "plugins:\n  distro.redhat:\n    short_circuit_files: /x\n", want: []string{"plugins.distro.redhat.short_circuit_files must be a list"}},
		{name: "family key refused", sys: "plugins:\n  distro.redhat:\n    policy_file: /x\n", want: []string{`unknown key "plugins.distro.redhat.policy_file"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			if tc.sys != "" {
				files["aminator.yml"] = tc.sys
			}
			if tc.envs != "" {
				files["environments.yml"] = tc.envs
			}
			_, err := load(t, setup(t, files, nil), tc.env, tc.flags)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("not a *config.Error: %T", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// -B and -b are mutually exclusive, as in the original: both on the command
// line (or both in one file) is an error, and one given in a higher layer
// replaces the other from a lower one.
func TestBaseExclusive(t *testing.T) {
	d := setup(t, map[string]string{"aminator.yml": "context:\n  base_ami_name: from-file\n"}, nil)
	_, err := load(t, d, nil, map[string]string{"base_ami_id": "ami-0123456789abcdef0", "base_ami_name": "x"})
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "-B/--base-ami-id and -b/--base-ami-name are mutually exclusive") {
		t.Errorf("both flags: %v", err)
	}
	c, err := load(t, d, nil, map[string]string{"base_ami_id": "ami-0123456789abcdef0"})
	if err != nil || c.Context.BaseAMIName != "" || c.Context.BaseAMIID != "ami-0123456789abcdef0" {
		t.Errorf("-B over a file's base_ami_name: %v %+v", err, c)
	}
	c, err = load(t, d, []string{"AMINATOR_BASE_AMI_ID=ami-0123456789abcdef0"}, map[string]string{"base_ami_name": "flag"})
	if err != nil || c.Context.BaseAMIName != "flag" || c.Context.BaseAMIID != "" {
		t.Errorf("-b over the environment's base_ami_id: %v %+v", err, c)
	}
	c, err = load(t, d, nil, nil)
	if err != nil || c.Context.BaseAMIName != "from-file" {
		t.Errorf("the file's base alone: %v %+v", err, c)
	}
	both := setup(t, nil, map[string]string{"aminator.yml": "context:\n  base_ami_id: ami-0123456789abcdef0\n  base_ami_name: n\n"})
	if _, err := load(t, both, nil, nil); !errors.As(err, &ce) || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Errorf("both in one file: %v", err)
	}
}

// expect_http is a list of ports from a file, AMINATOR_EXPECT_HTTP or the
// repeated flag (joined with commas); anything not a port is refused.
func TestExpectHTTP(t *testing.T) {
	d := setup(t, map[string]string{"aminator.yml": "context:\n  expect_http: [80]\n"}, nil)
	for _, c := range []struct {
		env   []string
		flags map[string]string
		want  []int
	}{
		{nil, nil, []int{80}},
		{[]string{"AMINATOR_EXPECT_HTTP=80,8080"}, nil, []int{80, 8080}},
		{nil, map[string]string{"expect_http": "443"}, []int{443}},
	} {
		cfg, err := load(t, d, c.env, c.flags)
		if err != nil || !slices.Equal(cfg.Context.ExpectHTTP, c.want) {
			t.Errorf("%v %v: %v %v, want %v", c.env, c.flags, cfg, err, c.want)
		}
	}
	for _, bad := range []string{"http", "0", "70000"} {
		if _, err := load(t, d, nil, map[string]string{"expect_http": bad}); err == nil || !strings.Contains(err.Error(), "expect_http") {
			t.Errorf("expect_http %q: %v", bad, err)
		}
	}
}

// The bakery's signing key and trust file, which a worker hands its
// child as the settings attest.signing_key and attest.trust_file, replace
// the configured ones and keep the rest of attest.
func TestBakerySigningSettings(t *testing.T) {
	d := setup(t, map[string]string{"aminator.yml": "attest:\n  signing_key: /etc/host.pem\n  builder_id: urn:aminator:bakery:prod\n"}, nil)
	c, err := load(t, d, nil, map[string]string{"attest.signing_key": "kms:alias/bakery", "attest.trust_file": "/etc/bakery-trust.yml"})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Attest; a.SigningKey != "kms:alias/bakery" || a.TrustFile != "/etc/bakery-trust.yml" || a.BuilderID != "urn:aminator:bakery:prod" {
		t.Errorf("attest %+v", a)
	}
	if _, err := load(t, d, nil, map[string]string{"attest.builder_id": "x"}); err == nil {
		t.Error("attest.builder_id was taken as a setting")
	}
}
