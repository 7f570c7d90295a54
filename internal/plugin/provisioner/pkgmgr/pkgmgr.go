// Package pkgmgr is the package-manager driver every provisioner plugin is
// made of: the Provision skeleton, the retries, the install-time
// measurement, the full-disk short-circuit, downloading a URL and staging
// a package file into the chroot are written here once, and a Backend (apt
// with dpkg, dnf or yum with rpm) says how its package manager does each
// step. Format gives a package format's file reader and version order, so
// callers that hold only a manifest can order its versions.
package pkgmgr

import (
	"context"
	"errors"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Backend is one package manager, driven inside a chroot. Each method is
// one attempt at one step; the driver decides the order, retries, timing
// and error context around them. Errors carry the command that failed (a
// *logging.CommandError from the chroot, whose cause the driver reads).
type Backend interface {
	// Format is the package format: .deb or .rpm files, dpkg's or rpm's
	// version order.
	Format() Format
	// ParseName checks a repository package as the user typed it and
	// splits it into a name and a version ("" when none is given, or when
	// the package manager cannot tell them apart without its
	// repositories).
	ParseName(raw string) (name, version string, err error)
	// Refresh brings the repositories' metadata up to date (apt-get
	// update; dnf clean metadata and makecache). The driver retries it.
	Refresh(ctx context.Context, c plugin.Chroot) error
	// InstallRepo installs name, at version unless "", from the image's
	// repositories.
	InstallRepo(ctx context.Context, c plugin.Chroot, name, version string) error
	// FileName reads which package the file at path (inside the chroot)
	// holds, in the form Query takes.
	FileName(ctx context.Context, c plugin.Chroot, path string) (string, error)
	// InstallFile installs the package file at path (inside the chroot).
	InstallFile(ctx context.Context, c plugin.Chroot, path string) error
	// Query reads an installed package's name, version and architecture;
	// it fails unless the package is fully installed.
	Query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error)
	// Manifest lists every installed package.
	Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error)
	// Clean removes downloaded packages and cached metadata from the image.
	Clean(ctx context.Context, c plugin.Chroot) error
}

// Resolver is a Backend that can tell, installing nothing, which version
// of a repository package it would install (apt-cache show). The driver
// refreshes the metadata first. A backend that is not a Resolver has the
// package's version known only once installed.
type Resolver interface {
	// Candidate says which version of name (of version, if given) an
	// install would take. A package the repositories do not offer wraps
	// ErrNoCandidate.
	Candidate(ctx context.Context, c plugin.Chroot, name, version string) (*plugin.PackageInfo, error)
}

// Fixer is a Backend whose file install does not fetch dependencies
// (dpkg -i): when InstallFile fails, the driver refreshes the metadata and
// calls Fix (apt-get -f install), and the install stands if the package
// is then fully installed.
type Fixer interface {
	Fix(ctx context.Context, c plugin.Chroot) error
}

// FileNamer is a Backend that can say which package a file holds, in the
// form Query takes, from what Format.ReadFile read of the file on the
// host: the driver then runs no command in the image for it (FileName),
// and asks FileName only of a file the reader cannot read.
type FileNamer interface {
	NameOf(info *plugin.PackageInfo) string
}

// Lister is a Backend that reads an installed package together with the
// list of every installed package, in one command. The driver's Provision
// then returns the list (PackageInfo.Installed), so a bake that runs
// nothing else in the image takes it as the manifest without asking again.
type Lister interface {
	// QueryAll is Query (the same checks and errors) plus Manifest's list.
	QueryAll(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, []plugin.Package, error)
}

// ErrNoCandidate is wrapped by Resolver.Candidate when the repositories
// offer no such package (or version). The driver then leaves the install
// to say why, in the package manager's own words.
var ErrNoCandidate = errors.New("no candidate in the repositories")

// The kinds of plugin.PackageRef.
const (
	kindRepo = "repo"
	kindFile = "file"
	kindURL  = "url"
)
