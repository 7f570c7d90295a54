// Package yum is the provisioner for the RedHat family: a pkgmgr backend
// for rpm and dnf (or yum, when the image has no dnf). It installs a local
// .rpm (dnf install of the file, which resolves its dependencies from the
// image's repositories), a repository package (NAME or NAME-VERSION, after
// refreshing the metadata), or an .rpm from a URL, and reads name, version
// and release back from rpm.
package yum

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
)

// Settings are the plugin's settings (plugins: provisioner.yum:).
type Settings struct {
	// Command is dnf, yum, or auto (dnf when the image has it).
	Command string `yaml:"command"`
	// Retries for refreshing metadata and for downloads.
	Retries int `yaml:"retries"`
	// InstallOptions are extra options (for example --setopt=... or --releasever=9).
	InstallOptions []string `yaml:"install_options"`
	// NoGPGCheck installs local and downloaded files without signature checks, as the original did.
	NoGPGCheck bool `yaml:"nogpgcheck"`
	// Clean removes cached packages and metadata after installing.
	Clean           bool `yaml:"clean"`
	DownloadTimeout int  `yaml:"download_timeout"`
}

// Defaults are the built-in settings.
func Defaults() *Settings {
	return &Settings{Command: "auto", Retries: 3, NoGPGCheck: true, Clean: true, DownloadTimeout: 300}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindProvisioner, Name: "yum",
		Description: "yum/dnf: local .rpm, repository package (name[-version]) or http(s) URL",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			s := cfg.(*Settings)
			if s.Command != "auto" && s.Command != "yum" && s.Command != "dnf" {
				return nil, fmt.Errorf("provisioner.yum command %q: auto, yum or dnf", s.Command)
			}
			return pkgmgr.New(&Backend{Command: s.Command, InstallOptions: s.InstallOptions, NoGPGCheck: s.NoGPGCheck}, pkgmgr.Options{
				Retries: s.Retries, DownloadRetries: s.Retries, DownloadTimeout: time.Duration(s.DownloadTimeout) * time.Second,
				Clean: s.Clean, TmpDir: filepath.Join(d.StateDir, "tmp"), Log: d.Logger, Fetcher: d.Download,
			}), nil
		},
	})
}

// Backend drives rpm and dnf or yum.
type Backend struct {
	// Command is dnf, yum or auto.
	Command string
	// InstallOptions are added to every dnf or yum command.
	InstallOptions []string
	// NoGPGCheck installs package files without checking signatures.
	NoGPGCheck bool
}

var (
	_ pkgmgr.Backend   = (*Backend)(nil)
	_ pkgmgr.FileNamer = (*Backend)(nil)
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`)

// Format is RPM.
func (b *Backend) Format() pkgmgr.Format { return pkgmgr.RPM }

// ParseName checks NAME or NAME-VERSION; which one it is only the
// repositories tell, so the version is left "".
func (b *Backend) ParseName(raw string) (string, string, error) {
	if !nameRE.MatchString(raw) {
		return "", "", fmt.Errorf("package %q is not a valid RPM package name (letters, digits and ._+~-, not starting with -)", raw)
	}
	return raw, "", nil
}

// command is dnf or yum: the setting, or dnf when the image has it.
func (b *Backend) command(c plugin.Chroot) string {
	if b.Command != "auto" && b.Command != "" {
		return b.Command
	}
	for _, p := range []string{"usr/bin/dnf", "bin/dnf"} {
		if _, err := c.Root().Stat(p); err == nil {
			return "dnf"
		}
	}
	return "yum"
}

func (b *Backend) run(ctx context.Context, c plugin.Chroot, network bool, args ...string) error {
	argv := append([]string{b.command(c), "-y"}, b.InstallOptions...)
	return c.Run(ctx, plugin.Run{Argv: append(argv, args...), Network: network})
}

// fetchThenInstall runs dnf/yum install ARGS twice (issue 10): first
// --downloadonly with the network, which runs no package code, then from
// the cache only (-C) in a sandbox without network, where the scriptlets run.
func (b *Backend) fetchThenInstall(ctx context.Context, c plugin.Chroot, args ...string) error {
	if err := b.run(ctx, c, true, append(args, "--downloadonly")...); err != nil {
		return err
	}
	return b.run(ctx, c, false, append(args, "-C")...)
}

// Refresh drops the cached metadata and downloads it again.
func (b *Backend) Refresh(ctx context.Context, c plugin.Chroot) error {
	for _, args := range [][]string{{"clean", "metadata"}, {"makecache"}} {
		// Metadata downloads only: no package code runs.
		if err := b.run(ctx, c, true, args...); err != nil {
			return fmt.Errorf("%s %s: %w", b.command(c), strings.Join(args, " "), err)
		}
	}
	return nil
}

// InstallRepo installs NAME or NAME-VERSION (version is always "").
func (b *Backend) InstallRepo(ctx context.Context, c plugin.Chroot, name, version string) error {
	if version != "" {
		name += "-" + version
	}
	if err := b.fetchThenInstall(ctx, c, "install", name); err != nil {
		return fmt.Errorf("install %s: %w", name, err)
	}
	return nil
}

// NameOf is the exact package an .rpm the host read holds, as FileName
// says it (NAME-VERSION-RELEASE.ARCH).
func (b *Backend) NameOf(info *plugin.PackageInfo) string {
	return info.Name + "-" + info.Version + "-" + info.Release + "." + info.Arch
}

// FileName reads the exact package a file holds (NAME-VERSION-RELEASE.ARCH),
// so that Query cannot pick another architecture or version.
func (b *Backend) FileName(ctx context.Context, c plugin.Chroot, path string) (string, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"rpm", "-q", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n", "-p", path}})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// InstallFile installs a package file with dnf or yum, which fetch its
// dependencies from the repositories.
func (b *Backend) InstallFile(ctx context.Context, c plugin.Chroot, path string) error {
	args := []string{"install", path}
	if b.NoGPGCheck {
		args = append([]string{"--nogpgcheck"}, args...)
	}
	return b.fetchThenInstall(ctx, c, args...)
}

// Query reads name, version, release and architecture of an installed
// package; rpm -q takes NAME, NAME-VERSION[-RELEASE] and the full NEVRA.
func (b *Backend) Query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"rpm", "-q", "--qf", "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n", name}})
	if err != nil {
		return nil, fmt.Errorf("package %s is not installed: %w", name, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 1 {
		return nil, fmt.Errorf("%q matches %d installed packages (%d architectures or versions); name one exactly, as NAME-VERSION-RELEASE.ARCH", name, len(lines), len(lines))
	}
	f := strings.Split(lines[0], "\t")
	if len(f) != 5 {
		return nil, fmt.Errorf("rpm -q %s: unexpected output %q", name, out)
	}
	full := f[2] + "-" + f[3]
	if f[1] != "0" && f[1] != "" {
		full = f[1] + ":" + full
	}
	return &plugin.PackageInfo{Name: f[0], Version: f[2], Release: f[3], Arch: f[4], FullVersion: full}, nil
}

// Manifest lists the installed packages (rpm -qa).
func (b *Backend) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"}})
	if err != nil {
		return nil, fmt.Errorf("package manifest: %w", err)
	}
	var pkgs []plugin.Package
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, "\t"); len(f) == 3 {
			pkgs = append(pkgs, plugin.Package{Name: f[0], Version: f[1], Arch: f[2]})
		}
	}
	return pkgs, nil
}

// Clean removes cached packages and metadata (clean all).
func (b *Backend) Clean(ctx context.Context, c plugin.Chroot) error {
	return b.run(ctx, c, false, "clean", "all")
}
