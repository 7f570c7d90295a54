package pkgmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Options are how the driver runs its backend, the same for every backend.
type Options struct {
	// Retries is how many times refreshing the repositories' metadata is
	// tried.
	Retries int
	// DownloadRetries is how many times downloading a URL is tried.
	DownloadRetries int
	// DownloadTimeout bounds one download attempt (0: five minutes).
	DownloadTimeout time.Duration
	// Clean removes downloaded packages and cached metadata after an
	// install that may have left some (see Provision).
	Clean bool
	// TmpDir receives downloaded package files (and checked copies).
	TmpDir string
	// Fetcher downloads a package URL (nil: under fetch's default rules).
	Fetcher *fetch.Fetcher
	// Backoff is the wait after a first failed attempt (0: DefaultBackoff).
	Backoff time.Duration
	// Now is the clock install times are measured with (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Driver is a provisioner plugin (plugin.Provisioner and plugin.Inspector)
// made of a Backend.
//
// A package's install time (PackageInfo.InstallTime) is the time its
// backend spent in the commands that install: InstallRepo, InstallFile
// and Fix. Refreshing metadata, waiting between retries, downloading,
// staging, querying and cleaning are not part of it, whatever the backend.
type Driver struct {
	b      Backend
	format Format
	o      Options
}

var (
	_ plugin.Provisioner = (*Driver)(nil)
	_ plugin.Inspector   = (*Driver)(nil)
)

// New makes the driver of a backend.
func New(b Backend, o Options) *Driver {
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Fetcher == nil {
		o.Fetcher, _ = fetch.New(fetch.Policy{}) // the defaults are valid
	}
	return &Driver{b: b, format: b.Format(), o: o}
}

// Format is the package format the backend installs.
func (d *Driver) Format() Format { return d.format }

// Parse says what kind of package the user named, and checks it.
func (d *Driver) Parse(raw string) (plugin.PackageRef, error) {
	return parseRef(raw, d.format.Ext(), d.b.ParseName)
}

// Inspect reads the package a local or downloaded file holds (downloading
// a URL's now, copying a file whose SHA256 is given as it checks it; the
// caller removes a Private file), or takes a repository
// package's version as given; a repository package without a version
// needs Resolve.
func (d *Driver) Inspect(ctx context.Context, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	switch ref.Kind {
	case kindRepo:
		if ref.Version == "" {
			return ref, nil, nil
		}
		ver, rel := naming.SplitVersion(ref.Version)
		return ref, &plugin.PackageInfo{Name: ref.Name, FullVersion: ref.Version, Version: ver, Release: rel}, nil
	case kindURL, kindFile:
		var err error
		if ref, err = d.localize(ctx, ref); err != nil {
			return ref, nil, err
		}
	default:
		return ref, nil, fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	info, err := d.format.ReadFile(ref.Path)
	return ref, info, err
}

// Resolve refreshes the metadata in the mounted image and asks a Resolver
// backend which version of a repository package it would install (the
// candidate, or the version given), pinning ref to it. When the
// repositories offer no such package, or the backend cannot tell, it
// returns no PackageInfo and the install says what it installed or why
// it could not.
func (d *Driver) Resolve(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (plugin.PackageRef, *plugin.PackageInfo, error) {
	r, ok := d.b.(Resolver)
	if ref.Kind != kindRepo || !ok {
		return ref, nil, nil
	}
	if err := d.refresh(ctx, c); err != nil {
		return ref, nil, err
	}
	ref.Resolved = true
	info, err := r.Candidate(ctx, c, ref.Name, ref.Version)
	if errors.Is(err, ErrNoCandidate) {
		d.o.Log.Info("the repositories offer no such package; the install will say why", "package", ref.Raw)
		return ref, nil, nil
	}
	if err != nil {
		return ref, nil, err
	}
	ref.Version = info.FullVersion
	return ref, info, nil
}

// Manifest lists the packages installed in the chroot.
func (d *Driver) Manifest(ctx context.Context, c plugin.Chroot) ([]plugin.Package, error) {
	return d.b.Manifest(ctx, c)
}

// refresh brings the metadata up to date, with retries.
func (d *Driver) refresh(ctx context.Context, c plugin.Chroot) error {
	return retry(ctx, d.o.Log, "refreshing the package metadata", d.o.Retries, d.o.Backoff, func() error {
		return d.b.Refresh(ctx, c)
	})
}
