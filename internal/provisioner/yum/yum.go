// Package yum is the provisioner for the RedHat family: it installs a local
// .rpm (yum/dnf install of the file, which resolves its dependencies from
// the image's repositories), a repository package (NAME or NAME-VERSION,
// after cleaning cached metadata, with retries), or an .rpm from a URL, and
// reads name, version and release back from rpm. dnf is used when the image
// has it, else yum.
package yum

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/pkgfile"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/provisioner/pkgref"
)

// Settings are the plugin's settings (plugins: provisioner.yum:).
type Settings struct {
	// Command is dnf, yum, or auto (dnf when the image has it).
	Command string `yaml:"command"`
	// Retries for metadata and installs from repositories.
	Retries int `yaml:"retries"`
	// InstallOptions are extra options (for example --setopt=... or --releasever=9).
	InstallOptions []string `yaml:"install_options"`
	// NoGPGCheck installs local and downloaded files without signature checks, as the original did.
	NoGPGCheck bool `yaml:"nogpgcheck"`
	// Clean removes cached packages and metadata after installing.
	Clean           bool `yaml:"clean"`
	DownloadTimeout int  `yaml:"download_timeout"`
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindProvisioner, Name: "yum",
		Description: "yum/dnf: local .rpm, repository package (name[-version]) or http(s) URL",
		NewConfig: func() any {
			return &Settings{Command: "auto", Retries: 3, NoGPGCheck: true, Clean: true, DownloadTimeout: 300}
		},
		New: func(cfg any, d plugin.Deps) (any, error) {
			s := cfg.(*Settings)
			if s.Command != "auto" && s.Command != "yum" && s.Command != "dnf" {
				return nil, fmt.Errorf("provisioner.yum command %q: auto, yum or dnf", s.Command)
			}
			return &Yum{s: s, log: d.Logger, tmpDir: filepath.Join(d.StateDir, "tmp")}, nil
		},
	})
}

// Yum is the plugin.
type Yum struct {
	s      *Settings
	log    *slog.Logger
	tmpDir string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`)

// Parse says what kind of package the user named, and checks it.
func (y *Yum) Parse(raw string) (plugin.PackageRef, error) {
	return pkgref.Parse(raw, ".rpm", func(r *plugin.PackageRef) error {
		if !nameRE.MatchString(raw) {
			return fmt.Errorf("package %q is not a valid RPM package name (letters, digits and ._+~-, not starting with -)", raw)
		}
		r.Name = raw
		return nil
	})
}

func (y *Yum) command(c plugin.Chroot) string {
	if y.s.Command != "auto" {
		return y.s.Command
	}
	for _, p := range []string{"usr/bin/dnf", "bin/dnf"} {
		if _, err := c.Root().Stat(p); err == nil {
			return "dnf"
		}
	}
	return "yum"
}

func (y *Yum) run(ctx context.Context, c plugin.Chroot, args ...string) error {
	argv := append([]string{y.command(c), "-y"}, y.s.InstallOptions...)
	return c.Run(ctx, plugin.Run{Argv: append(argv, args...)})
}

func (y *Yum) retry(ctx context.Context, what string, fn func() error) error {
	var err error
	for i := 1; i <= max(1, y.s.Retries); i++ {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
		first, _, _ := strings.Cut(err.Error(), "\n")
		y.log.Warn(what+" failed; retrying", "err", first, "attempt", i)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i) * 2 * time.Second):
		}
	}
	return err
}

// Provision installs the package and reads its metadata.
func (y *Yum) Provision(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (*plugin.PackageInfo, error) {
	var name string
	start := time.Now()
	switch ref.Kind {
	case "repo":
		if err := y.run(ctx, c, "clean", "metadata"); err != nil {
			y.log.Warn("clean metadata failed", "err", err)
		}
		if err := y.retry(ctx, "install", func() error { return y.run(ctx, c, "install", ref.Name) }); err != nil {
			return nil, fmt.Errorf("install %s: %w", ref.Name, err)
		}
		// rpm -q takes NAME or NAME-VERSION[-RELEASE] as yum does.
		name = ref.Name
	case "file", "url":
		file := ref.Path // a URL's when Inspect downloaded it; the caller removes it
		if file == "" {
			f, err := y.download(ctx, ref.URL)
			if err != nil {
				return nil, err
			}
			defer os.Remove(f)
			file = f
		}
		inImage, done, err := pkgref.Stage(c, file, "package.rpm")
		if err != nil {
			return nil, err
		}
		defer done()
		// The exact package in the file (name-version-release.arch), so the
		// query below cannot pick another architecture or version.
		out, err := c.Output(ctx, plugin.Run{Argv: []string{"rpm", "-q", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n", "-p", inImage}})
		if err != nil {
			return nil, fmt.Errorf("%s is not a readable .rpm: %w", file, err)
		}
		name = strings.TrimSpace(string(out))
		args := []string{"install", inImage}
		if y.s.NoGPGCheck {
			args = append([]string{"--nogpgcheck"}, args...)
		}
		start = time.Now()
		if err := y.run(ctx, c, args...); err != nil {
			return nil, fmt.Errorf("install %s: %w", file, err)
		}
	default:
		return nil, fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	took := time.Since(start)
	info, err := Query(ctx, c, name)
	if err != nil {
		return nil, err
	}
	info.InstallTime = took
	if y.s.Clean {
		if err := y.run(ctx, c, "clean", "all"); err != nil {
			y.log.Warn("clean all failed", "err", err)
		}
	}
	return info, nil
}

func (y *Yum) download(ctx context.Context, u string) (string, error) {
	return (&pkgref.Downloader{Dir: y.tmpDir, Ext: ".rpm", Retries: y.s.Retries,
		Timeout: time.Duration(y.s.DownloadTimeout) * time.Second, Log: y.log}).Fetch(ctx, u)
}

// Inspect reads the package a local or downloaded .rpm holds. A
// repository package (NAME or NAME-VERSION, which yum tells apart only
// against its repositories) is known once installed.
func (y *Yum) Inspect(ctx context.Context, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	switch ref.Kind {
	case "repo":
		return ref, nil, nil
	case "url":
		if ref.Path == "" {
			f, err := y.download(ctx, ref.URL)
			if err != nil {
				return ref, nil, err
			}
			ref.Path = f
		}
	case "file":
	default:
		return ref, nil, fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	info, err := pkgfile.RPM(ref.Path)
	return ref, info, err
}

// Resolve cannot tell a repository package's version before installing
// it; the bake checks the image name after the install instead.
func (y *Yum) Resolve(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	return ref, nil, nil
}

// Query reads name, version, release and architecture of an installed package.
func Query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error) {
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
func (y *Yum) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
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
