// Package distro is the distro plugin, written once for every family: it
// mounts the image's root filesystem, prepares the chroot (package chroot),
// keeps services from starting while packages install and, on an image
// that boots through aminator's static GRUB config, defers the boot-loader
// commands (bootloader.go). A family (package debian, package redhat) is
// only its defaults: a settings type, the files it short-circuits, its
// service policy file (Debian's policy-rc.d; RedHat has none) and the
// environment its commands run in.
package distro

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/distro/chroot"
)

// Settings are the keys every family takes (plugins: distro.NAME:); a
// family's settings type embeds them inline.
type Settings struct {
	// ShortCircuit points ShortCircuitFiles at ShortCircuitTo for the bake.
	ShortCircuit      bool     `yaml:"short_circuit"`
	ShortCircuitFiles []string `yaml:"short_circuit_files"`
	ShortCircuitTo    string   `yaml:"short_circuit_target"`
	// CopyFiles are host files copied into the image for the bake
	// (resolv.conf), the image's own restored afterwards.
	CopyFiles []string `yaml:"copy_files"`
	// MountBinfmtMisc mounts binfmt_misc read-only in the bake's view of
	// the image (see chroot.BinfmtMount); package code never sees it.
	MountBinfmtMisc bool `yaml:"mount_binfmt_misc"`
	// RootMountOptions are extra mount options for the root filesystem.
	RootMountOptions string `yaml:"root_mount_options"`
}

// Policy is how a family keeps services from starting in the chroot,
// besides the short-circuited commands.
type Policy struct {
	// File, if not "", is written with Content (mode 0755) for the bake
	// and the image's own put back afterwards: Debian's policy-rc.d,
	// which invoke-rc.d asks before starting a service.
	File, Content string
	// Env is the environment every command in the chroot starts with.
	Env map[string]string
}

// Family is one family's registration: its name, its settings type with
// its defaults, and how its settings split into the common ones and its
// policy.
type Family struct {
	Name        string
	Description string
	// Defaults returns a new settings value, a pointer to the family's
	// settings type, filled with the family's defaults.
	Defaults func() any
	// Split reads the common settings and the policy out of a settings
	// value Defaults made.
	Split func(cfg any) (Settings, Policy)
}

// Register registers a family as a distro plugin.
func Register(f Family) {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindDistro, Name: f.Name, Description: f.Description,
		NewConfig: f.Defaults,
		New: func(cfg any, d plugin.Deps) (any, error) {
			s, p := f.Split(cfg)
			return New(s, p, d.Logger), nil
		},
	})
}

// Distro is the plugin.
type Distro struct {
	s   Settings
	p   Policy
	log *slog.Logger
}

var _ plugin.Distro = (*Distro)(nil)

// New makes the distro plugin of a family's settings and policy.
func New(s Settings, p Policy, log *slog.Logger) *Distro {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Distro{s: s, p: p, log: log}
}

// Enter mounts the image with the default pseudo-filesystems (and
// binfmt_misc if asked), copies the host files in and keeps services from
// starting; on error everything is undone.
func (d *Distro) Enter(ctx context.Context, o plugin.MountOptions) (plugin.Chroot, error) {
	mounts := append([]chroot.MountSpec(nil), chroot.DefaultMounts...)
	if d.s.MountBinfmtMisc {
		mounts = append(mounts, chroot.BinfmtMount)
	}
	c, err := chroot.Enter(ctx, chroot.Options{MountOptions: o, RootMountOptions: d.s.RootMountOptions, Mounts: mounts,
		CopyFiles: d.s.CopyFiles, BaseEnv: d.p.Env, Log: d.log})
	if err != nil {
		return nil, err
	}
	if err := d.prepare(c); err != nil {
		if cerr := c.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return c, nil
}

// prepare keeps services from starting and defers the boot-loader
// commands (bootloader.go).
func (d *Distro) prepare(c *chroot.Chroot) error {
	if err := d.keepServicesDown(c); err != nil {
		return err
	}
	return d.deferBootLoader(c)
}

// keepServicesDown puts the policy file in place and points the commands
// that start services at the short-circuit target, all undone on Close.
func (d *Distro) keepServicesDown(c *chroot.Chroot) error {
	if d.p.File != "" {
		if err := c.Replace(strings.TrimPrefix(d.p.File, "/"), []byte(d.p.Content), 0o755); err != nil {
			return err
		}
	}
	if !d.s.ShortCircuit {
		return nil
	}
	for _, f := range d.s.ShortCircuitFiles {
		if err := c.ShortCircuit(strings.TrimPrefix(f, "/"), d.s.ShortCircuitTo); err != nil {
			return err
		}
	}
	return nil
}
