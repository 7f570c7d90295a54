// Package fakechroot is the one fake chroot, for tests that run as an
// ordinary user, in milliseconds: a plugin.Chroot whose image is an
// ordinary directory, where nothing is mounted and no command runs.
//
// It serves two uses. New makes one chroot on a temporary directory for a
// test that drives a plugin (a package manager) directly: every command's
// argv is recorded and answered from canned results (On), failing the way
// the real chroot does (a *logging.CommandError whose output gives the
// cause), with a fake clock each command moves on. Distro is a distro
// plugin that enters such chroots on the bake's mount points, for the
// steps' tests: every call goes through a hook that sees it first and can
// make it fail (a fakecloud.Recorder's, so that the cloud's calls and the
// chroot's are in one list), and commands are answered by a function the
// test gives. Provisioner is a package manager for it.
package fakechroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Distro enters fake chroots.
type Distro struct {
	// Hook, when set, sees every call before it is made, as "Method arg"
	// ("Enter vol-00000003", "Chroot.Run install hello=1.0-1",
	// "Chroot.Close vol-00000003"); an error it returns is the call's.
	Hook func(call string) error
	// Exec answers Run and Output once the hook let them through; nil
	// answers as the chroot's rules say (On), by default success with no
	// output.
	Exec func(ctx context.Context, c *Chroot, r plugin.Run) ([]byte, error)

	mu      sync.Mutex
	chroots []*Chroot
}

func (d *Distro) call(method, arg string) error {
	if d == nil || d.Hook == nil {
		return nil
	}
	if arg != "" {
		method += " " + arg
	}
	return d.Hook(method)
}

// Enter makes the mount point, a plain directory, and a chroot on it.
func (d *Distro) Enter(_ context.Context, o plugin.MountOptions) (plugin.Chroot, error) {
	if err := d.call("Enter", filepath.Base(o.MountPoint)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.MountPoint, 0o755); err != nil {
		return nil, fmt.Errorf("enter: %w", err)
	}
	root, err := os.OpenRoot(o.MountPoint)
	if err != nil {
		return nil, fmt.Errorf("enter: %w", err)
	}
	c := newChroot(o.MountPoint, root)
	c.d, c.Options = d, o
	d.mu.Lock()
	d.chroots = append(d.chroots, c)
	d.mu.Unlock()
	return c, nil
}

// Chroots are the chroots entered so far.
func (d *Distro) Chroots() []*Chroot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Chroot(nil), d.chroots...)
}

var _ plugin.Distro = (*Distro)(nil)
