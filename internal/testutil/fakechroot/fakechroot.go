// Package fakechroot is a distro plugin whose chroot is an ordinary
// directory: nothing is mounted and no command runs. Every call goes
// through a hook that sees it first and can make it fail (a
// fakecloud.Recorder's, so that the cloud's calls and the chroot's are in
// one list), and commands are answered by a function the test gives. The
// steps and plugins that work in a chroot are so tested as an ordinary
// user. Provisioner is a package manager for it.
package fakechroot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// means success with no output.
	Exec func(ctx context.Context, c *Chroot, r plugin.Run) ([]byte, error)

	mu      sync.Mutex
	chroots []*Chroot
}

func (d *Distro) call(method, arg string) error {
	if d.Hook == nil {
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
	c := &Chroot{d: d, path: o.MountPoint, root: root, Options: o}
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

// Chroot is a fake chroot: a directory.
type Chroot struct {
	// Options are the ones it was entered with.
	Options plugin.MountOptions

	d    *Distro
	path string
	root *os.Root

	mu                sync.Mutex
	closed, preserved bool
}

func (c *Chroot) name() string { return filepath.Base(c.path) }

// Path is the directory.
func (c *Chroot) Path() string { return c.path }

// Root gives file access confined to the directory.
func (c *Chroot) Root() *os.Root { return c.root }

// Run passes the hook and Exec; a cancelled context fails it, as it would
// kill a real command.
func (c *Chroot) Run(ctx context.Context, r plugin.Run) error {
	_, err := c.exec(ctx, "Chroot.Run", r)
	return err
}

// Output is Run with Exec's output.
func (c *Chroot) Output(ctx context.Context, r plugin.Run) ([]byte, error) {
	return c.exec(ctx, "Chroot.Output", r)
}

func (c *Chroot) exec(ctx context.Context, method string, r plugin.Run) ([]byte, error) {
	if err := c.d.call(method, strings.Join(r.Argv, " ")); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Argv[0], context.Cause(ctx))
	}
	if c.d.Exec == nil {
		return nil, nil
	}
	return c.d.Exec(ctx, c, r)
}

// BindFile only passes the hook.
func (c *Chroot) BindFile(_, rel string) (func() error, error) {
	if err := c.d.call("Chroot.BindFile", rel); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

// EndProcesses only passes the hook.
func (c *Chroot) EndProcesses(context.Context) error {
	return c.d.call("Chroot.EndProcesses", c.name())
}

// Close passes the hook and closes the chroot; closing twice is fine.
func (c *Chroot) Close(context.Context) error {
	if err := c.d.call("Chroot.Close", c.name()); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		return c.root.Close()
	}
	return nil
}

// Preserve marks the chroot kept.
func (c *Chroot) Preserve() {
	c.d.call("Chroot.Preserve", c.name())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preserved = true
}

// Closed says whether Close ran.
func (c *Chroot) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Preserved says whether Preserve ran.
func (c *Chroot) Preserved() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.preserved
}

var (
	_ plugin.Distro = (*Distro)(nil)
	_ plugin.Chroot = (*Chroot)(nil)
)
