package pkgmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
)

// stopwatch adds up the time of the commands that install, and only those.
type stopwatch struct {
	now   func() time.Time
	total time.Duration
}

func (s *stopwatch) time(fn func() error) error {
	start := s.now()
	err := fn()
	s.total += s.now().Sub(start)
	return err
}

// Provision installs the package inside c and reads back what was
// installed (with a Lister backend, the whole list of installed packages
// too); with Options.Clean it then cleans the package cache (a failure
// there is only a warning) if the install could have filled it: after a
// repository install or an install that fetched dependencies, not after a
// file the package manager installed alone (dpkg -i), which downloads
// nothing.
func (d *Driver) Provision(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (*plugin.PackageInfo, error) {
	sw := &stopwatch{now: d.o.Now}
	var name string
	fetched := true
	var err error
	var sum string
	switch ref.Kind {
	case kindRepo:
		name, err = d.installRepo(ctx, c, ref, sw)
	case kindFile, kindURL:
		name, fetched, sum, err = d.installFile(ctx, c, ref, sw)
	default:
		err = fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	if err != nil {
		return nil, err
	}
	info, err := d.query(ctx, c, name)
	if err != nil {
		return nil, err
	}
	info.InstallTime = sw.total
	info.SHA256 = sum
	if ref.Kind == kindRepo {
		info.SHA256 = d.cachedDigest(c, info)
	}
	switch {
	case !d.o.Clean:
	case !fetched:
		d.o.Log.Debug("nothing was downloaded: no package cache to clean", "package", name)
	default:
		if err := d.b.Clean(ctx, c); err != nil {
			d.o.Log.Warn("cleaning the package cache failed", "err", err)
		}
	}
	return info, nil
}

// query reads the installed package back, with the list of every
// installed package when the backend can read both at once.
func (d *Driver) query(ctx context.Context, c plugin.Chroot, name string) (*plugin.PackageInfo, error) {
	l, ok := d.b.(Lister)
	if !ok {
		return d.b.Query(ctx, c, name)
	}
	info, all, err := l.QueryAll(ctx, c, name)
	if err != nil {
		return nil, err
	}
	info.Installed = all
	return info, nil
}

// installRepo installs a repository package, refreshing the metadata
// first unless Resolve did.
func (d *Driver) installRepo(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef, sw *stopwatch) (string, error) {
	if !ref.Resolved {
		if err := d.refresh(ctx, c); err != nil {
			return "", err
		}
	}
	if err := sw.time(func() error { return d.b.InstallRepo(ctx, c, ref.Name, ref.Version) }); err != nil {
		return "", err
	}
	return ref.Name, nil
}

// installFile installs a local or downloaded package file (installStaged)
// and hashes it on the way: sum is its SHA-256, computed beside the
// install. fetched says whether the package manager may have downloaded
// anything: a Fixer's file install alone does not (dpkg -i), its fix does.
func (d *Driver) installFile(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef, sw *stopwatch) (name string, fetched bool, sum string, err error) {
	own := false      // a copy made here, removed here; Inspect's is its caller's
	if !ref.Private { // Inspect did not download or check it: do it now
		if ref, err = d.localize(ctx, ref); err != nil {
			return "", false, "", err
		}
		own = ref.Private
	}
	hashed := fileDigest(ref)
	defer func() {
		sum = <-hashed // before the file is removed
		if own {
			os.Remove(ref.Path)
		}
	}()
	name, fetched, err = d.installStaged(ctx, c, ref.Path, sw)
	return name, fetched, "", err
}

// installStaged stages file in the image's /tmp and installs it; a Fixer
// backend gets to complete a failed install.
func (d *Driver) installStaged(ctx context.Context, c plugin.Chroot, file string, sw *stopwatch) (name string, fetched bool, err error) {
	inImage, done, err := stage(c, file, "package"+d.format.Ext())
	if err != nil {
		return "", false, err
	}
	defer done()
	if name, err = d.fileName(ctx, c, file, inImage); err != nil {
		return "", false, fmt.Errorf("%s is not a readable %s: %w", file, d.format.Ext(), err)
	}
	fx, isFixer := d.b.(Fixer)
	installErr := sw.time(func() error { return d.b.InstallFile(ctx, c, inImage) })
	if installErr == nil {
		return name, !isFixer, nil
	}
	installErr = fmt.Errorf("install %s: %w", name, installErr)
	if !isFixer || ctx.Err() != nil || noSpace(installErr) {
		return "", true, installErr // nothing another command can fix
	}
	if err := d.fix(ctx, c, fx, name, installErr, sw); err != nil {
		return "", true, err
	}
	return name, true, nil
}

// fileName names the package the host's file holds, as Query takes it:
// from the format's own reader when the backend can (no command in the
// image), else with the backend's FileName on the staged file.
func (d *Driver) fileName(ctx context.Context, c plugin.Chroot, file, inImage string) (string, error) {
	if n, ok := d.b.(FileNamer); ok {
		info, err := d.format.ReadFile(file)
		if err == nil {
			return n.NameOf(info), nil
		}
		d.o.Log.Debug("the package file's reader failed; asking the image's package manager", "file", file, "err", err)
	}
	return d.b.FileName(ctx, c, inImage)
}

// fix completes a failed file install: refresh, Fix, and the package must
// then be fully installed. A fix that "succeeds" by leaving the package
// uninstalled fails with the install's own error, which says why.
func (d *Driver) fix(ctx context.Context, c plugin.Chroot, fx Fixer, name string, installErr error, sw *stopwatch) error {
	d.o.Log.Info("the install failed; completing its dependencies", "package", name)
	if err := d.refresh(ctx, c); err != nil {
		return errors.Join(installErr, err)
	}
	if err := sw.time(func() error { return fx.Fix(ctx, c) }); err != nil {
		return fmt.Errorf("install %s: %w", name, err)
	}
	if _, err := d.b.Query(ctx, c, name); err != nil {
		d.o.Log.Debug("the fix did not install the package", "package", name, "err", err)
		return installErr
	}
	return nil
}

// noSpace reports whether a command failed for a full disk.
func noSpace(err error) bool {
	var ce *logging.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	cause, _ := ce.Cause()
	return strings.Contains(cause, "No space left on device")
}
