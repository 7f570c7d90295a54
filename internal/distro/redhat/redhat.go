// Package redhat is the distro plugin for the RedHat family (RHEL, CentOS,
// Rocky, Alma, Fedora, Amazon Linux): the generic chroot, with the commands
// that start services short-circuited (there is no policy-rc.d; systemctl
// already refuses to start units in a chroot).
package redhat

import (
	"context"
	"log/slog"

	"github.com/aminator-go/aminator/internal/chroot"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Settings are the plugin's settings (plugins: distro.redhat:).
type Settings struct {
	ShortCircuit      bool     `yaml:"short_circuit"`
	ShortCircuitFiles []string `yaml:"short_circuit_files"`
	ShortCircuitTo    string   `yaml:"short_circuit_target"`
	CopyFiles         []string `yaml:"copy_files"`
	MountBinfmtMisc   bool     `yaml:"mount_binfmt_misc"`
	RootMountOptions  string   `yaml:"root_mount_options"`
}

// Defaults are the built-in settings, as the original's redhat distro.
func Defaults() *Settings {
	return &Settings{
		ShortCircuit:      true,
		ShortCircuitFiles: []string{"/sbin/service", "/usr/sbin/service", "/sbin/start", "/sbin/stop", "/sbin/restart", "/sbin/initctl"},
		ShortCircuitTo:    "/bin/true",
		CopyFiles:         []string{"/etc/resolv.conf"},
	}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindDistro, Name: "redhat",
		Description: "RedHat-family chroot: service commands short-circuited",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			return &RedHat{s: cfg.(*Settings), log: d.Logger}, nil
		},
	})
}

// RedHat is the plugin.
type RedHat struct {
	s   *Settings
	log *slog.Logger
}

// Enter mounts the image and keeps services from starting.
func (r *RedHat) Enter(ctx context.Context, o plugin.MountOptions) (plugin.Chroot, error) {
	p := chroot.Prep{RootMountOptions: r.s.RootMountOptions, BinfmtMisc: r.s.MountBinfmtMisc, CopyFiles: r.s.CopyFiles, Log: r.log,
		BaseEnv: map[string]string{"SYSTEMD_OFFLINE": "1"}}
	if r.s.ShortCircuit {
		p.ShortCircuit, p.Target = r.s.ShortCircuitFiles, r.s.ShortCircuitTo
	}
	c, err := chroot.Prepare(ctx, o, p)
	if err != nil {
		return nil, err
	}
	return c, nil
}
