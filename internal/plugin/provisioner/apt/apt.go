// Package apt is the provisioner for Debian-family images: a pkgmgr
// backend for dpkg and apt-get. It installs a local .deb (dpkg -i, then
// apt-get -f install for its dependencies), a package from the image's
// repositories (apt-get update, then apt-get install NAME[=VERSION], the
// version resolved with apt-cache first), or a .deb downloaded from a URL,
// and reads the installed packages back from dpkg's status file (on the
// host, as dpkg-query would list them) or from dpkg-query.
package apt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/image/pkgdb"
	"github.com/aminator-go/aminator/internal/image/pkgfile"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
)

// Settings are the plugin's settings (plugins: provisioner.apt:).
type Settings struct {
	// UpdateRetries is how many times apt-get update is tried.
	UpdateRetries int `yaml:"update_retries"`
	// DownloadRetries is how many times a URL download is tried.
	DownloadRetries int `yaml:"download_retries"`
	// DownloadTimeout bounds one download attempt, in seconds.
	DownloadTimeout int `yaml:"download_timeout"`
	// InstallOptions are extra apt-get options (for example --no-install-recommends).
	InstallOptions []string `yaml:"install_options"`
	// Clean runs apt-get clean after an install that used the
	// repositories, so downloaded .debs do not end up in the image.
	Clean bool `yaml:"clean"`
}

// Defaults are the built-in settings.
func Defaults() *Settings {
	return &Settings{UpdateRetries: 3, DownloadRetries: 3, DownloadTimeout: 300, Clean: true}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindProvisioner, Name: "apt",
		Description: "dpkg/apt-get: local .deb, repository package (name[=version]) or http(s) URL",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			s := cfg.(*Settings)
			return pkgmgr.New(&Backend{InstallOptions: s.InstallOptions}, pkgmgr.Options{
				Retries: s.UpdateRetries, DownloadRetries: s.DownloadRetries, DownloadTimeout: time.Duration(s.DownloadTimeout) * time.Second,
				Clean: s.Clean, TmpDir: filepath.Join(d.StateDir, "tmp"), Log: d.Logger, Fetcher: d.Download,
			}), nil
		},
	})
}

// Backend drives dpkg and apt-get.
type Backend struct {
	// InstallOptions are added to apt-get install and apt-get -f install.
	InstallOptions []string
}

var (
	_ pkgmgr.Backend   = (*Backend)(nil)
	_ pkgmgr.Resolver  = (*Backend)(nil)
	_ pkgmgr.Fixer     = (*Backend)(nil)
	_ pkgmgr.FileNamer = (*Backend)(nil)
	_ pkgmgr.Lister    = (*Backend)(nil)
	_ pkgmgr.Cacher    = (*Backend)(nil)
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)
)

// Format is Deb.
func (b *Backend) Format() pkgmgr.Format { return pkgmgr.Deb }

// ParseName checks NAME or NAME=VERSION.
func (b *Backend) ParseName(raw string) (string, string, error) {
	name, ver, hasVer := strings.Cut(raw, "=")
	if !nameRE.MatchString(name) {
		return "", "", fmt.Errorf("package name %q is not a valid Debian package name (lower-case letters, digits, + - .; at least two characters)", name)
	}
	if hasVer && !versionRE.MatchString(ver) {
		return "", "", fmt.Errorf("package version %q is not a valid Debian version", ver)
	}
	return name, ver, nil
}

func (b *Backend) aptGet(ctx context.Context, c plugin.Chroot, network bool, args ...string) error {
	argv := []string{"apt-get", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "-o", "Acquire::Retries=3"}
	argv = append(argv, b.InstallOptions...)
	argv = append(argv, args...)
	return c.Run(ctx, plugin.Run{Argv: argv, Network: network})
}

// fetchThenInstall runs apt-get ARGS twice (issue 10): first with
// --download-only and the network, which runs no package code, then
// offline, where dpkg unpacks from the cache and runs the maintainer
// scripts in a sandbox with only its own loopback.
func (b *Backend) fetchThenInstall(ctx context.Context, c plugin.Chroot, args ...string) error {
	if err := b.aptGet(ctx, c, true, append(args, "--download-only")...); err != nil {
		return err
	}
	return b.aptGet(ctx, c, false, args...)
}

// Refresh runs apt-get update.
func (b *Backend) Refresh(ctx context.Context, c plugin.Chroot) error {
	// Downloads only: apt-get update runs no package scripts.
	if err := c.Run(ctx, plugin.Run{Argv: []string{"apt-get", "-q", "update"}, Network: true}); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	return nil
}

func spec(name, version string) string {
	if version == "" {
		return name
	}
	return name + "=" + version
}

// InstallRepo runs apt-get install NAME[=VERSION].
func (b *Backend) InstallRepo(ctx context.Context, c plugin.Chroot, name, version string) error {
	if err := b.fetchThenInstall(ctx, c, "install", spec(name, version)); err != nil {
		return fmt.Errorf("install %s: %w", spec(name, version), err)
	}
	return nil
}

// Candidate asks apt-cache which version apt-get install would take. A
// package (or version) apt-cache does not know wraps pkgmgr.ErrNoCandidate,
// so that apt-get install says why in its own words ("E: Unable to locate
// package"), and may yet install a virtual package's one provider.
func (b *Backend) Candidate(ctx context.Context, c plugin.Chroot, name, version string) (*plugin.PackageInfo, error) {
	s := spec(name, version)
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"apt-cache", "show", "--no-all-versions", s}})
	var ce *logging.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Tail, "No packages found") {
		return nil, fmt.Errorf("apt-cache show %s: %w", s, pkgmgr.ErrNoCandidate)
	}
	if err != nil {
		return nil, fmt.Errorf("package %s is not in the image's repositories: %w", s, err)
	}
	f := pkgfile.ControlFields(out)
	if f["package"] == "" { // apt-cache show NAME=VERSION of a version it lacks: nothing, exit 0
		return nil, fmt.Errorf("apt-cache show %s: %w", s, pkgmgr.ErrNoCandidate)
	}
	if f["package"] != name || !versionRE.MatchString(f["version"]) {
		return nil, fmt.Errorf("apt-cache show %s: unexpected package %q version %q", s, f["package"], f["version"])
	}
	ver, rel := naming.SplitVersion(f["version"])
	return &plugin.PackageInfo{Name: name, FullVersion: f["version"], Version: ver, Release: rel, Arch: f["architecture"]}, nil
}

// NameOf is the name Query takes for a .deb the host read: its Package.
func (b *Backend) NameOf(info *plugin.PackageInfo) string { return info.Name }

// FileName reads the Package field of a .deb with dpkg-deb.
func (b *Backend) FileName(ctx context.Context, c plugin.Chroot, path string) (string, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-deb", "--field", path, "Package"}})
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(out))
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("it names an invalid package %q", name)
	}
	return name, nil
}

// InstallFile runs dpkg -i, which does not fetch dependencies: Fix does.
func (b *Backend) InstallFile(ctx context.Context, c plugin.Chroot, path string) error {
	if err := c.Run(ctx, plugin.Run{Argv: []string{"dpkg", "-i", path}}); err != nil {
		return fmt.Errorf("dpkg -i: %w", err)
	}
	return nil
}

// Fix runs apt-get -f install, which installs what a failed dpkg -i left
// missing (or removes the package it cannot fix).
func (b *Backend) Fix(ctx context.Context, c plugin.Chroot) error {
	if err := b.fetchThenInstall(ctx, c, "-f", "install"); err != nil {
		return fmt.Errorf("dpkg -i failed and apt-get -f install could not fix it: %w", err)
	}
	return nil
}

// Query reads name, version and architecture of an installed package and
// fails unless it is fully installed (apt-get -f may remove instead of fix).
func (b *Backend) Query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-query", "-W", "-f", pkgdb.DpkgQueryFormat, name}})
	if err != nil {
		return nil, fmt.Errorf("package %s is not installed: %w", name, err)
	}
	return pick(out, name)
}

// QueryAll is Query and Manifest at once, from dpkg's status file read
// on the host (no command in the image) or, when only dpkg-query can say
// (see pkgdb.ReadDpkgStatus) or the package is not there as it must be,
// from one dpkg-query of every package.
func (b *Backend) QueryAll(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, []plugin.Package, error) {
	if out, ok := pkgdb.ReadDpkgStatus(c.Root().FS()); ok {
		if info, err := pick(out, name); err == nil {
			return info, pkgdb.ParseDpkgQuery(out), nil
		}
	}
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-query", "-W", "-f", pkgdb.DpkgQueryFormat}})
	if err != nil {
		return nil, nil, fmt.Errorf("package %s: %w", name, err)
	}
	info, err := pick(out, name)
	if err != nil {
		return nil, nil, err
	}
	return info, pkgdb.ParseDpkgQuery(out), nil
}

// pick finds package name in dpkg-query lines of pkgdb.DpkgQueryFormat; it
// must be there once (one architecture) and fully installed.
func pick(out []byte, name string) (*plugin.PackageInfo, error) {
	var rows [][]string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, "\t"); len(f) == 4 && f[1] == name {
			rows = append(rows, f)
		}
	}
	switch {
	case len(rows) == 0:
		return nil, fmt.Errorf("package %s is not installed: dpkg-query does not list it", name)
	case len(rows) > 1:
		return nil, fmt.Errorf("dpkg-query %s: unexpected output %q (%d packages of that name)", name, out, len(rows))
	}
	f := rows[0]
	if st := strings.TrimSpace(f[0]); st != "ii" {
		return nil, fmt.Errorf("package %s is not fully installed (dpkg status %q)", name, st)
	}
	ver, rel := naming.SplitVersion(f[2])
	return &plugin.PackageInfo{Name: f[1], FullVersion: f[2], Version: ver, Release: rel, Arch: f[3]}, nil
}

// Manifest lists the installed packages: dpkg's status file read on the
// host, or dpkg-query inside the chroot when only it can say.
func (b *Backend) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
	if out, ok := pkgdb.ReadDpkgStatus(c.Root().FS()); ok {
		return pkgdb.ParseDpkgQuery(out), nil
	}
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-query", "-W", "-f", pkgdb.DpkgQueryFormat}})
	if err != nil {
		return nil, fmt.Errorf("package manifest: %w", err)
	}
	return pkgdb.ParseDpkgQuery(out), nil
}

// Clean runs apt-get clean, so downloaded .debs stay out of the image.
// Cached is where apt keeps a downloaded package until apt-get clean:
// NAME_VERSION_ARCH.deb in its archives, the version's epoch colon
// written %3a.
func (b *Backend) Cached(info *plugin.PackageInfo) (dir, pattern string) {
	v := strings.ReplaceAll(info.FullVersion, ":", "%3a")
	if v == "" {
		v = "*"
	}
	return "var/cache/apt/archives", info.Name + "_" + v + "_*.deb"
}

func (b *Backend) Clean(ctx context.Context, c plugin.Chroot) error {
	return c.Run(ctx, plugin.Run{Argv: []string{"apt-get", "clean"}})
}
