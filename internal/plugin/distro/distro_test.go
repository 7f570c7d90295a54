package distro_test

import (
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/distro"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/plugin/distro/redhat"
)

// Both families are the one distro plugin, under the names environments use.
func TestRegistered(t *testing.T) {
	for _, name := range []string{"debian", "redhat"} {
		reg, ok := plugin.Lookup(plugin.KindDistro, name)
		if !ok {
			t.Fatalf("no distro %q", name)
		}
		inst, err := reg.New(reg.NewConfig(), plugin.Deps{})
		if _, isDistro := inst.(*distro.Distro); err != nil || !isDistro {
			t.Errorf("%s: %T %v", name, inst, err)
		}
	}
}

// Each family's defaults: Debian's policy-rc.d and debconf, RedHat's
// SYSTEMD_OFFLINE and no policy file; both short-circuit service commands.
func TestFamilyDefaults(t *testing.T) {
	s, p := debian.Family.Split(debian.Defaults())
	if p.File != "/usr/sbin/policy-rc.d" || p.Env["DEBIAN_FRONTEND"] != "noninteractive" || !s.ShortCircuit ||
		!slices.Contains(s.ShortCircuitFiles, "/sbin/start-stop-daemon") || s.ShortCircuitTo != "/bin/true" {
		t.Errorf("debian: %+v %+v", s, p)
	}
	s, p = redhat.Family.Split(redhat.Defaults())
	if p.File != "" || p.Env["SYSTEMD_OFFLINE"] != "1" || len(s.ShortCircuitFiles) != 6 || !slices.Contains(s.CopyFiles, "/etc/resolv.conf") {
		t.Errorf("redhat: %+v %+v", s, p)
	}
}

// A family's settings decode the shared keys and its own at one level.
func TestSettingsInline(t *testing.T) {
	cfg := debian.Defaults()
	if err := yaml.Unmarshal([]byte("policy_file: /p\nshort_circuit_files: [/c]\nmount_binfmt_misc: true\n"), cfg); err != nil {
		t.Fatal(err)
	}
	s, p := debian.Family.Split(cfg)
	if p.File != "/p" || !slices.Equal(s.ShortCircuitFiles, []string{"/c"}) || !s.MountBinfmtMisc || s.ShortCircuitTo != "/bin/true" {
		t.Errorf("%+v %+v", s, p)
	}
	out, err := yaml.Marshal(redhat.Defaults())
	if err != nil || string(out[:len("short_circuit: true")]) != "short_circuit: true" {
		t.Errorf("redhat settings marshal as %s (%v)", out, err)
	}
}
