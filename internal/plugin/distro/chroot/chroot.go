// Package chroot mounts an image's root filesystem and turns it into a
// chroot a provisioner can work in, for any Linux distribution: the
// pseudo-filesystems, the host's resolv.conf, file replacements that are
// undone afterwards, commands run by exec with argv and a clean
// environment, and a teardown that ends leftover processes and unmounts in
// reverse. Commands never run in this chroot directly: each one runs in
// package sandbox, which pivots into the image and replaces the proc and
// sys mounted here with its own namespaces' (issue 10).
//
// Every file operation inside the image goes through an os.Root, so a
// symlink in the image can never make aminator write to the host, and
// mounts are made onto directories opened without following symlinks.
package chroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

// MountSpec is one pseudo-filesystem mounted inside the chroot.
type MountSpec struct {
	Source string
	// Target is relative to the image root.
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// ReadOnlySelf bind-mounts Target (already mounted, inside the image)
	// onto itself read-only; Source is ignored.
	ReadOnlySelf bool
	// Setup runs on the freshly mounted directory (to make device nodes).
	Setup func(dir *os.File) error
}

// DefaultMounts are what a package's scripts expect, made so they cannot
// change the host: proc with /proc/sys and /proc/sysrq-trigger read-only,
// a read-only sysfs, a private /dev (tmpfs with the usual character
// devices, not the host's /dev), a private devpts and /dev/shm.
var DefaultMounts = []MountSpec{
	{Source: "proc", Target: "proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	{Target: "proc/sys", ReadOnlySelf: true},
	{Target: "proc/sysrq-trigger", ReadOnlySelf: true},
	{Source: "sysfs", Target: "sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY},
	{Source: "tmpfs", Target: "dev", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "mode=0755,size=4m", Setup: populateDev},
	{Source: "devpts", Target: "dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620"},
	{Source: "tmpfs", Target: "dev/shm", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777"},
}

// populateDev makes the device nodes and links a chroot needs in a fresh /dev.
func populateDev(dir *os.File) error {
	fd := int(dir.Fd())
	for _, n := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		if err := unix.Mknodat(fd, n.name, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		if err := unix.Fchmodat(fd, n.name, 0o666, 0); err != nil { // past the umask
			return err
		}
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := unix.Symlinkat(target, fd, name); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := unix.Mkdirat(fd, d, 0o755); err != nil {
			return fmt.Errorf("/dev/%s: %w", d, err)
		}
	}
	return nil
}

// BinfmtMount is binfmt_misc, to see the foreign-architecture handlers
// (the kernel uses them whether or not it is mounted). It is read-only:
// binfmt_misc is not namespaced for the bake (one instance per user
// namespace, and the bake runs in the host's), so a handler registered
// through it would run on the host for every matching file the host
// executes. Package code never sees it at all: the sandbox replaces /proc.
var BinfmtMount = MountSpec{Source: "binfmt_misc", Target: "proc/sys/fs/binfmt_misc", FSType: "binfmt_misc",
	Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}

// Options describe how to set up a chroot.
type Options struct {
	plugin.MountOptions
	// RootMountOptions are extra options for the root filesystem.
	RootMountOptions string
	Mounts           []MountSpec
	// CopyFiles are host files copied into the same place in the image for
	// the bake, the image's own restored afterwards (resolv.conf).
	CopyFiles []string
	// BaseEnv is the environment every command starts with.
	BaseEnv map[string]string
	Log     *slog.Logger
}

// Chroot is a mounted, prepared image root.
type Chroot struct {
	path    string
	root    *os.Root
	log     *slog.Logger
	baseEnv map[string]string
	// scriptNetwork gives every command the bake's network.
	scriptNetwork bool
	// releasePart detaches the partition's loop device, if one was made.
	releasePart func() error
	// dev is the device the root filesystem is mounted from.
	dev       string
	mu        sync.Mutex
	mounts    []string // host paths, in mount order (the root first)
	restores  []restore
	closed    bool
	preserved bool
}

// unusedWait is how long Close waits for the root filesystem to leave
// every mount namespace (a process the bake started, still exiting).
const unusedWait = 30 * time.Second

type restore struct {
	what string
	fn   func() error
}

var _ plugin.Chroot = (*Chroot)(nil)

// Enter mounts the root filesystem at o.MountPoint and sets up the chroot.
// On error everything done so far is undone.
func Enter(ctx context.Context, o Options) (c *Chroot, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c = &Chroot{path: filepath.Clean(o.MountPoint), log: o.Log, baseEnv: o.BaseEnv, scriptNetwork: o.ScriptNetwork}
	defer func() {
		if err != nil {
			if cerr := c.Close(context.WithoutCancel(ctx)); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := os.MkdirAll(c.path, 0o700); err != nil {
		return c, fmt.Errorf("mount point: %w", err)
	}
	dev, release, err := partition.Open(ctx, o.Device, o.Partition)
	if err != nil {
		return c, err
	}
	c.releasePart, c.dev = release, dev
	fstype, err := mount.DetectFS(dev)
	if err != nil {
		return c, err
	}
	data := o.RootMountOptions
	if fstype == "xfs" && !strings.Contains(data, "nouuid") {
		// Volumes from one base share a UUID; XFS refuses a second mount without this.
		data = strings.TrimPrefix(data+",nouuid", ",")
	}
	err = errors.ErrUnsupported
	if o.NoFlush && fstype == "ext4" && !strings.Contains(data, "barrier") {
		// A scratch volume: its journal commits and fsyncs need not flush
		// the device (see plugin.ScratchVolumer); a kernel that no longer
		// takes the option mounts it as it is. xfs has no such option.
		err = mount.Mount(dev, c.path, fstype, 0, strings.TrimPrefix(data+",nobarrier", ","))
	}
	if err != nil {
		if err := mount.Mount(dev, c.path, fstype, 0, data); err != nil {
			return c, err
		}
	}
	c.mounts = append(c.mounts, c.path)
	if c.root, err = os.OpenRoot(c.path); err != nil {
		return c, fmt.Errorf("open image root: %w", err)
	}
	for _, m := range o.Mounts {
		if err := c.mountInside(m); err != nil {
			return c, err
		}
	}
	for _, f := range o.CopyFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("copy %s into the image: %w", f, err)
		}
		if err := c.Replace(strings.TrimPrefix(f, "/"), data, 0o644); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *Chroot) mountInside(m MountSpec) error {
	rel := path.Clean(m.Target)
	if m.ReadOnlySelf {
		// Inside a filesystem this process just mounted (proc): no symlink
		// planted by the image can be on the way.
		host := filepath.Join(c.path, rel)
		if _, err := os.Lstat(host); errors.Is(err, fs.ErrNotExist) {
			return nil // not on this kernel (sysrq-trigger without CONFIG_MAGIC_SYSRQ)
		}
		if err := unix.Mount(host, host, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /%s read-only: %w", rel, err)
		}
		c.mounts = append(c.mounts, host)
		if err := unix.Mount("", host, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("remount /%s read-only: %w", rel, err)
		}
		return nil
	}
	if st, err := c.root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		if err := c.root.MkdirAll(rel, 0o755); err != nil {
			return fmt.Errorf("make /%s in the image: %w", rel, err)
		}
	} else if err != nil {
		return fmt.Errorf("/%s in the image: %w", rel, err)
	} else if !st.IsDir() {
		return fmt.Errorf("/%s in the image is not a directory (%s); refusing to mount over it", rel, st.Mode().Type())
	}
	dir, err := c.root.OpenFile(rel, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open /%s in the image: %w", rel, err)
	}
	defer dir.Close()
	host := filepath.Join(c.path, rel)
	if err := mount.MountAt(m.Source, dir, host, m.FSType, m.Flags, m.Data); err != nil {
		return err
	}
	c.mounts = append(c.mounts, host)
	if m.Setup != nil {
		// The directory fd still points below the new mount: open the mount itself.
		top, err := c.root.OpenFile(rel, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("open /%s: %w", rel, err)
		}
		defer top.Close()
		if err := m.Setup(top); err != nil {
			return err
		}
	}
	return nil
}

// Path is the mount point.
func (c *Chroot) Path() string { return c.path }

// Root gives confined access to the image's files.
func (c *Chroot) Root() *os.Root { return c.root }

// EndProcesses sends SIGTERM to every process rooted in the chroot, then
// SIGKILL to those still there after a grace period.
func (c *Chroot) EndProcesses(ctx context.Context) error {
	pids := mount.ProcessesRootedAt(c.path)
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		c.log.Info("ending a process left running in the chroot", "pid", pid, "command", strings.TrimSpace(string(comm)))
		unix.Kill(pid, unix.SIGTERM)
	}
	for _, sig := range []unix.Signal{unix.SIGKILL, 0} {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && len(mount.ProcessesRootedAt(c.path)) > 0 {
			time.Sleep(25 * time.Millisecond)
		}
		left := mount.ProcessesRootedAt(c.path)
		if len(left) == 0 {
			return nil
		}
		if sig == 0 {
			return fmt.Errorf("processes still running in %s after SIGKILL: %v", c.path, left)
		}
		for _, pid := range left {
			unix.Kill(pid, sig)
		}
	}
	return nil
}

// Preserve keeps everything mounted: Close does nothing after it.
func (c *Chroot) Preserve() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preserved = true
}

// Close restores replaced files, ends leftover processes and unmounts
// everything in reverse. It runs every step even if one fails and is safe
// to call twice.
func (c *Chroot) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed || c.preserved {
		c.mu.Unlock()
		return nil
	}
	restores := c.restores
	c.restores = nil
	c.mu.Unlock()
	var errs []error
	if err := c.EndProcesses(ctx); err != nil {
		errs = append(errs, err)
	}
	for i := len(restores) - 1; i >= 0; i-- {
		if err := restores[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", restores[i].what, err))
		}
	}
	if c.root != nil {
		c.root.Close()
	}
	// Unmount in reverse; what stays busy is kept, so a second Close tries again.
	var left []string
	for i := len(c.mounts) - 1; i >= 0; i-- {
		if err := mount.Unmount(ctx, c.mounts[i], func() error { return c.EndProcesses(ctx) }); err != nil {
			errs = append(errs, err)
			left = append([]string{c.mounts[i]}, left...)
		}
	}
	c.mounts = left
	released := len(left) == 0
	if released && c.dev != "" {
		// The filesystem is shut down only when no mount namespace holds
		// it any more; a snapshot taken before would find its journal
		// unwritten and its last writes missing.
		if err := mount.WaitUnused(ctx, c.dev, unusedWait); err != nil {
			errs = append(errs, err)
			released = false
		}
	}
	if released && c.releasePart != nil {
		if err := c.releasePart(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		c.closed = true
		os.Remove(c.path) // the mount point directory, now empty
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down chroot %s: %w", c.path, err)
	}
	return nil
}
