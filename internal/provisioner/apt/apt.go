// Package apt is the provisioner for Debian-family images: it installs a
// local .deb (dpkg -i, then apt-get -f install for its dependencies), a
// package from the image's repositories (apt-get update with retries, then
// apt-get install NAME[=VERSION]), or a .deb downloaded from a URL, and
// reads back the installed package's name, version and release.
package apt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pkgfile"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/provisioner/pkgref"
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
	// Clean runs apt-get clean after installing, so downloaded .debs do not
	// end up in the image.
	Clean bool `yaml:"clean"`
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindProvisioner, Name: "apt",
		Description: "dpkg/apt-get: local .deb, repository package (name[=version]) or http(s) URL",
		NewConfig: func() any {
			return &Settings{UpdateRetries: 3, DownloadRetries: 3, DownloadTimeout: 300, Clean: true}
		},
		New: func(cfg any, d plugin.Deps) (any, error) {
			return &Apt{s: cfg.(*Settings), log: d.Logger, tmpDir: filepath.Join(d.StateDir, "tmp")}, nil
		},
	})
}

// Apt is the plugin.
type Apt struct {
	s      *Settings
	log    *slog.Logger
	tmpDir string
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	versionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)
)

// Parse says what kind of package the user named, and checks it.
func (a *Apt) Parse(raw string) (plugin.PackageRef, error) {
	return pkgref.Parse(raw, ".deb", func(r *plugin.PackageRef) error {
		name, ver, hasVer := strings.Cut(raw, "=")
		if !nameRE.MatchString(name) {
			return fmt.Errorf("package name %q is not a valid Debian package name (lower-case letters, digits, + - .; at least two characters)", name)
		}
		if hasVer && !versionRE.MatchString(ver) {
			return fmt.Errorf("package version %q is not a valid Debian version", ver)
		}
		r.Name, r.Version = name, ver
		return nil
	})
}

// Provision installs the package inside c.
func (a *Apt) Provision(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (*plugin.PackageInfo, error) {
	var name string
	var installTime time.Duration
	timed := func(fn func() error) error {
		start := time.Now()
		err := fn()
		installTime += time.Since(start)
		return err
	}
	switch ref.Kind {
	case "repo":
		if !ref.Resolved {
			if err := a.update(ctx, c); err != nil {
				return nil, err
			}
		}
		spec := ref.Name
		if ref.Version != "" {
			spec += "=" + ref.Version
		}
		if err := timed(func() error { return a.aptGet(ctx, c, "install", spec) }); err != nil {
			return nil, fmt.Errorf("install %s: %w", spec, err)
		}
		name = ref.Name
	case "url", "file":
		file := ref.Path // a URL's file is downloaded by Inspect; the caller removes it
		if ref.Kind == "url" && file == "" {
			var err error
			if file, err = a.download(ctx, ref.URL); err != nil {
				return nil, err
			}
			defer os.Remove(file)
		}
		var dpkgErr error
		var err error
		if name, dpkgErr, err = a.installFile(ctx, c, file, timed); err != nil {
			return nil, err
		}
		if dpkgErr != nil {
			// apt-get -f install may "fix" a package dpkg could not
			// unpack by leaving it uninstalled: then dpkg's own words
			// are why the bake failed.
			if _, qerr := Query(ctx, c, name); qerr != nil {
				a.log.Debug("dpkg -i failed and apt-get -f install did not install the package", "err", qerr)
				return nil, fmt.Errorf("install %s: dpkg -i: %w", name, dpkgErr)
			}
		}
	default:
		return nil, fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	info, err := Query(ctx, c, name)
	if err != nil {
		return nil, err
	}
	info.InstallTime = installTime
	if a.s.Clean {
		if err := c.Run(ctx, plugin.Run{Argv: []string{"apt-get", "clean"}}); err != nil {
			a.log.Warn("apt-get clean failed", "err", err)
		}
	}
	return info, nil
}

func (a *Apt) download(ctx context.Context, u string) (string, error) {
	return (&pkgref.Downloader{Dir: a.tmpDir, Ext: ".deb", Retries: a.s.DownloadRetries,
		Timeout: time.Duration(a.s.DownloadTimeout) * time.Second, Log: a.log}).Fetch(ctx, u)
}

// Inspect reads the package a local or downloaded .deb holds, or takes a
// repository package's version as given; a repository package without a
// version needs Resolve.
func (a *Apt) Inspect(ctx context.Context, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	switch ref.Kind {
	case "repo":
		if ref.Version == "" {
			return ref, nil, nil
		}
		ver, rel := naming.SplitVersion(ref.Version)
		return ref, &plugin.PackageInfo{Name: ref.Name, FullVersion: ref.Version, Version: ver, Release: rel}, nil
	case "url":
		if ref.Path == "" {
			file, err := a.download(ctx, ref.URL)
			if err != nil {
				return ref, nil, err
			}
			ref.Path = file
		}
	case "file":
	default:
		return ref, nil, fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	info, err := pkgfile.Deb(ref.Path)
	return ref, info, err
}

// Resolve runs apt-get update in the image and asks apt-cache which
// version of a repository package apt-get install would take (the
// candidate, or the version given), pinning ref to it.
func (a *Apt) Resolve(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	if ref.Kind != "repo" {
		return ref, nil, nil
	}
	if err := a.update(ctx, c); err != nil {
		return ref, nil, err
	}
	ref.Resolved = true
	spec := ref.Name
	if ref.Version != "" {
		spec += "=" + ref.Version
	}
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"apt-cache", "show", "--no-all-versions", spec}})
	if err != nil {
		return ref, nil, fmt.Errorf("package %s is not in the image's repositories: %w", spec, err)
	}
	f := pkgfile.ControlFields(out)
	if f["package"] != ref.Name || !versionRE.MatchString(f["version"]) {
		return ref, nil, fmt.Errorf("apt-cache show %s: unexpected package %q version %q", spec, f["package"], f["version"])
	}
	ref.Version = f["version"]
	ver, rel := naming.SplitVersion(ref.Version)
	return ref, &plugin.PackageInfo{Name: ref.Name, FullVersion: ref.Version, Version: ver, Release: rel, Arch: f["architecture"]}, nil
}

func (a *Apt) aptGet(ctx context.Context, c plugin.Chroot, args ...string) error {
	argv := []string{"apt-get", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "-o", "Acquire::Retries=3"}
	argv = append(argv, a.s.InstallOptions...)
	argv = append(argv, args...)
	return c.Run(ctx, plugin.Run{Argv: argv})
}

func (a *Apt) update(ctx context.Context, c plugin.Chroot) error {
	var err error
	for i := 1; i <= max(1, a.s.UpdateRetries); i++ {
		if err = c.Run(ctx, plugin.Run{Argv: []string{"apt-get", "-q", "update"}}); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		a.log.Warn("apt-get update failed; retrying", "err", firstLine(err), "attempt", i)
		sleep(ctx, time.Duration(i)*2*time.Second)
	}
	return fmt.Errorf("apt-get update: %w", err)
}

// installFile stages a .deb in the image's /tmp, installs it, and returns
// its package name and, when dpkg -i failed but apt-get -f install
// succeeded, dpkg's error.
func (a *Apt) installFile(ctx context.Context, c plugin.Chroot, file string, timed func(func() error) error) (string, error, error) {
	inImage, done, err := pkgref.Stage(c, file, "package.deb")
	if err != nil {
		return "", nil, err
	}
	defer done()
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-deb", "--field", inImage, "Package"}})
	if err != nil {
		return "", nil, fmt.Errorf("%s is not a readable .deb: %w", file, err)
	}
	name := strings.TrimSpace(string(out))
	if !nameRE.MatchString(name) {
		return "", nil, fmt.Errorf("%s names an invalid package %q", file, name)
	}
	dpkgErr := timed(func() error { return c.Run(ctx, plugin.Run{Argv: []string{"dpkg", "-i", inImage}}) })
	if dpkgErr == nil {
		return name, nil, nil
	}
	if ctx.Err() != nil {
		return "", nil, dpkgErr
	}
	var ce *logging.CommandError
	if errors.As(dpkgErr, &ce) {
		if cause, _ := ce.Cause(); strings.Contains(cause, "No space left on device") {
			return "", nil, fmt.Errorf("install %s: dpkg -i: %w", name, dpkgErr) // nothing apt-get can fix
		}
	}
	a.log.Info("dpkg -i failed; fixing dependencies with apt-get -f install", "package", name)
	if uerr := a.update(ctx, c); uerr != nil {
		return "", nil, errors.Join(fmt.Errorf("dpkg -i: %w", dpkgErr), uerr)
	}
	if ferr := timed(func() error { return a.aptGet(ctx, c, "-f", "install") }); ferr != nil {
		return "", nil, fmt.Errorf("install %s: dpkg -i failed and apt-get -f install could not fix it: %w", name, ferr)
	}
	return name, dpkgErr, nil
}

// Query reads name, version and architecture of an installed package and
// fails unless it is fully installed (apt-get -f may remove instead of fix).
func Query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n", name}})
	if err != nil {
		return nil, fmt.Errorf("package %s is not installed: %w", name, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 4 {
		return nil, fmt.Errorf("dpkg-query %s: unexpected output %q", name, out)
	}
	if strings.TrimSpace(f[3]) != "ii" {
		return nil, fmt.Errorf("package %s is not fully installed (dpkg status %q)", name, strings.TrimSpace(f[3]))
	}
	ver, rel := naming.SplitVersion(f[1])
	return &plugin.PackageInfo{Name: f[0], FullVersion: f[1], Version: ver, Release: rel, Arch: f[2]}, nil
}

// Manifest lists the installed packages (dpkg-query inside the chroot).
func (a *Apt) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"}})
	if err != nil {
		return nil, fmt.Errorf("package manifest: %w", err)
	}
	return ParseManifest(out), nil
}

// ParseManifest reads dpkg-query lines of status, name, version and
// architecture, keeping the installed packages.
func ParseManifest(out []byte) []plugin.Package {
	var pkgs []plugin.Package
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || strings.TrimSpace(f[0]) != "ii" {
			continue
		}
		pkgs = append(pkgs, plugin.Package{Name: f[1], Version: f[2], Arch: f[3]})
	}
	return pkgs
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
