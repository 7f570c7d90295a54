// Package debian is the distro plugin for Debian and Ubuntu images: on top
// of the generic chroot it writes a policy-rc.d that forbids starting
// services (inside the image, never on the host — the original tool's
// defect since 2018) and short-circuits the commands that start services.
package debian

import (
	"context"
	"log/slog"
	"strings"

	"github.com/aminator-go/aminator/internal/chroot"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Settings are the plugin's settings (plugins: distro.debian:).
type Settings struct {
	PolicyFile        string   `yaml:"policy_file"`
	PolicyFileContent string   `yaml:"policy_file_content"`
	ShortCircuit      bool     `yaml:"short_circuit"`
	ShortCircuitFiles []string `yaml:"short_circuit_files"`
	ShortCircuitTo    string   `yaml:"short_circuit_target"`
	CopyFiles         []string `yaml:"copy_files"`
	MountBinfmtMisc   bool     `yaml:"mount_binfmt_misc"`
	RootMountOptions  string   `yaml:"root_mount_options"`
}

// Defaults are the built-in settings.
func Defaults() *Settings {
	return &Settings{
		PolicyFile:        "/usr/sbin/policy-rc.d",
		PolicyFileContent: "#!/bin/sh\n# written by aminator for the bake; removed afterwards\nexit 101\n",
		ShortCircuit:      true,
		ShortCircuitFiles: []string{"/usr/sbin/service", "/sbin/start-stop-daemon", "/sbin/initctl"},
		ShortCircuitTo:    "/bin/true",
		CopyFiles:         []string{"/etc/resolv.conf"},
	}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindDistro, Name: "debian",
		Description: "Debian/Ubuntu chroot: policy-rc.d and short-circuited service commands",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			return &Debian{s: cfg.(*Settings), log: d.Logger}, nil
		},
	})
}

// Debian is the plugin.
type Debian struct {
	s   *Settings
	log *slog.Logger
}

// Enter mounts the image and prepares it so that installing packages
// starts no service.
func (d *Debian) Enter(ctx context.Context, o plugin.MountOptions) (plugin.Chroot, error) {
	p := chroot.Prep{RootMountOptions: d.s.RootMountOptions, BinfmtMisc: d.s.MountBinfmtMisc, CopyFiles: d.s.CopyFiles, Log: d.log,
		BaseEnv: map[string]string{"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}}
	if d.s.ShortCircuit {
		p.ShortCircuit, p.Target = d.s.ShortCircuitFiles, d.s.ShortCircuitTo
	}
	if d.s.PolicyFile != "" {
		p.Setup = func(c *chroot.Chroot) error {
			return c.Replace(strings.TrimPrefix(d.s.PolicyFile, "/"), []byte(d.s.PolicyFileContent), 0o755)
		}
	}
	c, err := chroot.Prepare(ctx, o, p)
	if err != nil {
		return nil, err
	}
	return c, nil
}
