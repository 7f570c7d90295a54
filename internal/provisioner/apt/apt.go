// Package apt is the provisioner for Debian-family images: it installs a
// local .deb (dpkg -i, then apt-get -f install for its dependencies), a
// package from the image's repositories (apt-get update with retries, then
// apt-get install NAME[=VERSION]), or a .deb downloaded from a URL, and
// reads back the installed package's name, version and release.
package apt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/plugin"
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
	r := plugin.PackageRef{Raw: raw}
	switch {
	case raw == "":
		return r, errors.New("no package given")
	case strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return r, fmt.Errorf("package URL %q is not a valid URL", raw)
		}
		r.Kind, r.URL = "url", raw
	case strings.HasPrefix(raw, "file://") || strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") ||
		strings.HasPrefix(raw, "../") || strings.HasSuffix(raw, ".deb"):
		p := strings.TrimPrefix(raw, "file://")
		abs, err := filepath.Abs(p)
		if err != nil {
			return r, fmt.Errorf("package file %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return r, fmt.Errorf("package file: %w", err)
		}
		if !st.Mode().IsRegular() {
			return r, fmt.Errorf("package file %s is not a regular file", abs)
		}
		r.Kind, r.Path = "file", abs
	default:
		name, ver, _ := strings.Cut(raw, "=")
		if !nameRE.MatchString(name) {
			return r, fmt.Errorf("package name %q is not a valid Debian package name (lower-case letters, digits, + - .; at least two characters)", name)
		}
		if strings.Contains(raw, "=") && !versionRE.MatchString(ver) {
			return r, fmt.Errorf("package version %q is not a valid Debian version", ver)
		}
		r.Kind, r.Name, r.Version = "repo", name, ver
	}
	return r, nil
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
		if err := a.update(ctx, c); err != nil {
			return nil, err
		}
		spec := ref.Name
		if ref.Version != "" {
			spec += "=" + ref.Version
		}
		if err := timed(func() error { return a.aptGet(ctx, c, "install", spec) }); err != nil {
			return nil, fmt.Errorf("install %s: %w", spec, err)
		}
		name = ref.Name
	case "url":
		file, err := a.download(ctx, ref.URL)
		if err != nil {
			return nil, err
		}
		defer os.Remove(file)
		if name, err = a.installFile(ctx, c, file, timed); err != nil {
			return nil, err
		}
	case "file":
		var err error
		if name, err = a.installFile(ctx, c, ref.Path, timed); err != nil {
			return nil, err
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

func (a *Apt) aptGet(ctx context.Context, c plugin.Chroot, args ...string) error {
	argv := []string{"apt-get", "-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
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
		a.log.Warn("apt-get update failed; retrying", "attempt", i, "err", firstLine(err))
		sleep(ctx, time.Duration(i)*2*time.Second)
	}
	return fmt.Errorf("apt-get update: %w", err)
}

// installFile stages a .deb in the image's /tmp, installs it, and returns
// its package name.
func (a *Apt) installFile(ctx context.Context, c plugin.Chroot, file string, timed func(func() error) error) (string, error) {
	root := c.Root()
	stage := "tmp/aminator-" + randHex()
	if err := root.MkdirAll(stage, 0o700); err != nil {
		return "", fmt.Errorf("stage package in the image: %w", err)
	}
	defer root.RemoveAll(stage)
	// The package is bind-mounted read-only, not copied: its bytes never
	// land in the image (and so never in its snapshot).
	inImage := path.Join(stage, "package.deb")
	unbind, err := c.BindFile(file, inImage)
	if err != nil {
		return "", err
	}
	defer unbind()
	out, err := c.Output(ctx, plugin.Run{Argv: []string{"dpkg-deb", "--field", "/" + inImage, "Package"}})
	if err != nil {
		return "", fmt.Errorf("%s is not a readable .deb: %w", file, err)
	}
	name := strings.TrimSpace(string(out))
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("%s names an invalid package %q", file, name)
	}
	if err := timed(func() error { return c.Run(ctx, plugin.Run{Argv: []string{"dpkg", "-i", "/" + inImage}}) }); err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		a.log.Info("dpkg -i failed; fixing dependencies with apt-get -f install", "package", name)
		if uerr := a.update(ctx, c); uerr != nil {
			return "", errors.Join(fmt.Errorf("dpkg -i: %w", err), uerr)
		}
		if ferr := timed(func() error { return a.aptGet(ctx, c, "-f", "install") }); ferr != nil {
			return "", fmt.Errorf("install %s: dpkg -i failed and apt-get -f install could not fix it: %w", name, ferr)
		}
	}
	return name, nil
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

// download fetches a URL to a temporary file on the host, with retries.
func (a *Apt) download(ctx context.Context, u string) (string, error) {
	if err := os.MkdirAll(a.tmpDir, 0o700); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	var lastErr error
	for i := 1; i <= max(1, a.s.DownloadRetries); i++ {
		f, err := a.fetch(ctx, u)
		if err == nil {
			return f, nil
		}
		lastErr = err
		var perm permanentError
		if ctx.Err() != nil || errors.As(err, &perm) {
			break
		}
		a.log.Warn("download failed; retrying", "url", u, "attempt", i, "err", err)
		sleep(ctx, time.Duration(i)*time.Second)
	}
	return "", fmt.Errorf("download %s: %w", u, lastErr)
}

type permanentError struct{ error }

func (a *Apt) fetch(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(1, a.s.DownloadTimeout))*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", permanentError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("HTTP %s", resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return "", permanentError{err}
		}
		return "", err
	}
	f, err := os.CreateTemp(a.tmpDir, "download-*.deb")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("short download: %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	a.log.Debug("downloaded", "url", u, "bytes", n)
	return f.Name(), nil
}

func randHex() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
