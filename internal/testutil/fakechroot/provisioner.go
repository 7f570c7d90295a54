package fakechroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Provisioner is a package manager for the fake chroot. A package is
// NAME or NAME=VERSION-RELEASE, always from the "repository". Installing
// runs `install NAME=VERSION` in the chroot and writes
// /var/lib/fake/NAME; the manifest runs `manifest` and lists what is
// there. It cannot tell a version before installing (see Inspector).
type Provisioner struct {
	// Versions are the versions the repository offers (default 1.0-1).
	Versions map[string]string
	// ListInstalled reads what is installed with the package, as apt's
	// provisioner does (PackageInfo.Installed), running no `manifest`.
	ListInstalled bool
}

// Parse reads NAME[=VERSION].
func (p *Provisioner) Parse(raw string) (plugin.PackageRef, error) {
	name, version, _ := strings.Cut(raw, "=")
	if name == "" || strings.ContainsAny(name, " /") {
		return plugin.PackageRef{}, fmt.Errorf("%q is not a package name", raw)
	}
	return plugin.PackageRef{Raw: raw, Kind: "repo", Name: name, Version: version}, nil
}

// version is what ref installs.
func (p *Provisioner) version(ref plugin.PackageRef) string {
	if ref.Version != "" {
		return ref.Version
	}
	if v := p.Versions[ref.Name]; v != "" {
		return v
	}
	return "1.0-1"
}

func info(name, full string) *plugin.PackageInfo {
	version, release, _ := strings.Cut(full, "-")
	return &plugin.PackageInfo{Name: name, Version: version, Release: release, Arch: "amd64", FullVersion: full}
}

// Provision installs the package.
func (p *Provisioner) Provision(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (*plugin.PackageInfo, error) {
	v := p.version(ref)
	if err := c.Run(ctx, plugin.Run{Argv: []string{"install", ref.Name + "=" + v}}); err != nil {
		return nil, fmt.Errorf("install %s: %w", ref.Name, err)
	}
	if err := c.Root().MkdirAll("var/lib/fake", 0o755); err != nil {
		return nil, err
	}
	if err := c.Root().WriteFile("var/lib/fake/"+ref.Name, []byte(v), 0o644); err != nil {
		return nil, err
	}
	in := info(ref.Name, v)
	if p.ListInstalled {
		var err error
		if in.Installed, err = list(c); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Manifest lists the installed packages.
func (p *Provisioner) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
	if _, err := c.Output(ctx, plugin.Run{Argv: []string{"manifest"}}); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return list(c)
}

// list reads what the fake installed in c.
func list(c plugin.Chroot) ([]plugin.Package, error) {
	ents, err := fs.ReadDir(c.Root().FS(), "var/lib/fake")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []plugin.Package
	for _, e := range ents {
		v, err := c.Root().ReadFile("var/lib/fake/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, plugin.Package{Name: e.Name(), Version: string(v), Arch: "amd64"})
	}
	return out, nil
}

// Inspector is the Provisioner that also tells, before installing, what
// a package with a version given is, and resolves a repository package's
// version in the mounted image (running `resolve NAME`), as apt does.
type Inspector struct{ Provisioner }

// Inspect knows a package given with its version.
func (p *Inspector) Inspect(_ context.Context, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	if ref.Version == "" {
		return ref, nil, nil
	}
	return ref, info(ref.Name, ref.Version), nil
}

// Resolve pins the version the repository offers.
func (p *Inspector) Resolve(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	if _, err := c.Output(ctx, plugin.Run{Argv: []string{"resolve", ref.Name}}); err != nil {
		return ref, nil, fmt.Errorf("resolve %s: %w", ref.Name, err)
	}
	ref.Version, ref.Resolved = p.version(ref), true
	return ref, info(ref.Name, ref.Version), nil
}

var (
	_ plugin.Provisioner = (*Provisioner)(nil)
	_ plugin.Inspector   = (*Inspector)(nil)
)
