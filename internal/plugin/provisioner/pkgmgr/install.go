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
// installed; with Options.Clean it then cleans the package cache (a
// failure there is only a warning).
func (d *Driver) Provision(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef) (*plugin.PackageInfo, error) {
	sw := &stopwatch{now: d.o.Now}
	var name string
	var err error
	switch ref.Kind {
	case kindRepo:
		name, err = d.installRepo(ctx, c, ref, sw)
	case kindFile, kindURL:
		name, err = d.installFile(ctx, c, ref, sw)
	default:
		err = fmt.Errorf("unknown package kind %q", ref.Kind)
	}
	if err != nil {
		return nil, err
	}
	info, err := d.b.Query(ctx, c, name)
	if err != nil {
		return nil, err
	}
	info.InstallTime = sw.total
	if d.o.Clean {
		if err := d.b.Clean(ctx, c); err != nil {
			d.o.Log.Warn("cleaning the package cache failed", "err", err)
		}
	}
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

// installFile stages a local or downloaded package file in the image's
// /tmp and installs it; a Fixer backend gets to complete a failed install.
func (d *Driver) installFile(ctx context.Context, c plugin.Chroot, ref plugin.PackageRef, sw *stopwatch) (string, error) {
	if !ref.Private { // Inspect did not download or check it: do it now
		var err error
		if ref, err = d.localize(ctx, ref); err != nil {
			return "", err
		}
		if ref.Private {
			defer os.Remove(ref.Path)
		}
	}
	file := ref.Path
	inImage, done, err := stage(c, file, "package"+d.format.Ext())
	if err != nil {
		return "", err
	}
	defer done()
	name, err := d.b.FileName(ctx, c, inImage)
	if err != nil {
		return "", fmt.Errorf("%s is not a readable %s: %w", file, d.format.Ext(), err)
	}
	installErr := sw.time(func() error { return d.b.InstallFile(ctx, c, inImage) })
	if installErr == nil {
		return name, nil
	}
	installErr = fmt.Errorf("install %s: %w", name, installErr)
	fx, ok := d.b.(Fixer)
	if !ok || ctx.Err() != nil || noSpace(installErr) {
		return "", installErr // nothing another command can fix
	}
	if err := d.fix(ctx, c, fx, name, installErr, sw); err != nil {
		return "", err
	}
	return name, nil
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
