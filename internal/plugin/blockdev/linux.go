package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// LinuxSettings are the "linux" blockdevice plugin's settings.
type LinuxSettings struct {
	// Letters are the device letters tried in order (sdf..sdp by default).
	Letters string `yaml:"letters"`
	// LocateTimeout bounds the wait for the local node after the cloud
	// reports the volume attached.
	LocateTimeout time.Duration `yaml:"locate_timeout"`
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindBlockDevice, Name: "linux",
		Description: "/dev/sd[f-p] under a flock; finds NVMe (by the volume id in the controller serial) or Xen nodes",
		NewConfig:   func() any { return &LinuxSettings{Letters: "fghijklmnop", LocateTimeout: 2 * time.Minute} },
		New: func(cfg any, d plugin.Deps) (any, error) {
			s := cfg.(*LinuxSettings)
			l := &Linux{Letters: s.Letters, Timeout: s.LocateTimeout, LockDir: d.LockDir, Dev: "/dev", Sys: "/sys"}
			if lister, ok := d.Cloud.(AttachedDeviceLister); ok {
				l.Attached = lister
			}
			return l, nil
		},
	})
}

// AttachedDeviceLister is implemented by clouds that know which device
// names the host has attached (EC2's instance block device mappings).
type AttachedDeviceLister interface {
	AttachedDevices(ctx context.Context) ([]string, error)
}

// Linux picks /dev/sdX names for cloud attachments and finds the node the
// kernel made for them. Dev and Sys are the roots of /dev and /sys (tests
// point them at a fake tree).
type Linux struct {
	Letters string
	Timeout time.Duration
	LockDir string
	// Attached, when the cloud knows it, lists what is attached to this
	// host (nil: only the names present under Dev are taken).
	Attached AttachedDeviceLister
	Dev, Sys string
}

// Allocate reserves a free device name: not present on this host (as sdX
// or xvdX), not in the cloud's attachment list for this host, and not
// reserved by another bake. The reservation is a flock held until Release,
// so it cannot outlive a crashed bake. A global lock serialises the pick.
func (l *Linux) Allocate(ctx context.Context, want string) (plugin.Slot, error) {
	global, err := flock.Exclusive(ctx, filepath.Join(l.LockDir, "blockdevice.lock"))
	if err != nil {
		return plugin.Slot{}, err
	}
	defer global.Unlock()
	taken := map[string]bool{}
	if l.Attached != nil {
		devs, err := l.Attached.AttachedDevices(ctx)
		if err != nil {
			return plugin.Slot{}, fmt.Errorf("list attached devices: %w", err)
		}
		for _, d := range devs {
			taken[strings.TrimPrefix(strings.TrimPrefix(d, "/dev/"), "xv")] = true
			taken[strings.TrimPrefix(d, "/dev/")] = true
		}
	}
	letters := l.Letters
	if want != "" {
		w := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(want, "/dev/"), "xvd"), "sd")
		if len(w) != 1 || w[0] < 'b' || w[0] > 'z' {
			return plugin.Slot{}, fmt.Errorf("--block-device %q: use /dev/sdX (X a letter from b to z)", want)
		}
		letters = w
	}
	for _, c := range letters {
		name := "sd" + string(c)
		if taken[name] || taken["d"+string(c)] || exists(filepath.Join(l.Dev, name)) || exists(filepath.Join(l.Dev, "xvd"+string(c))) {
			continue
		}
		lock, err := flock.TryExclusive(filepath.Join(l.LockDir, "device-"+name+".lock"))
		if errors.Is(err, flock.ErrLocked) {
			continue
		}
		if err != nil {
			return plugin.Slot{}, err
		}
		return plugin.Slot{Name: "/dev/" + name, Release: lock.Unlock}, nil
	}
	if want != "" {
		return plugin.Slot{}, fmt.Errorf("--block-device %s is in use on this host", want)
	}
	return plugin.Slot{}, fmt.Errorf("no free device name among /dev/sd[%s]", l.Letters)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Locate waits for the local node of an attached volume: on Nitro (NVMe)
// hosts the namespace whose controller serial is the volume id (EBS puts
// vol0123... there; /dev/sdX is at best a udev symlink), on Xen hosts
// /dev/xvdX or /dev/sdX. Unlike waiting for the API alone, this returns
// only once the kernel has the device.
func (l *Linux) Locate(ctx context.Context, a plugin.Attachment) (string, error) {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		if p, ok := l.find(a); ok {
			return p, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("volume %s attached at %s, but no local device appeared within %s (looked for NVMe serial %s and %s)",
				a.VolumeID, a.Device, timeout, strings.ReplaceAll(a.VolumeID, "-", ""), strings.Join(l.xenNames(a.Device), ", "))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *Linux) xenNames(dev string) []string {
	base := strings.TrimPrefix(dev, "/dev/")
	letter := strings.TrimPrefix(strings.TrimPrefix(base, "xvd"), "sd")
	return []string{filepath.Join(l.Dev, "xvd"+letter), filepath.Join(l.Dev, "sd"+letter)}
}

func (l *Linux) find(a plugin.Attachment) (string, bool) {
	serial := strings.ReplaceAll(a.VolumeID, "-", "")
	ctrls, _ := filepath.Glob(filepath.Join(l.Sys, "class", "nvme", "nvme*"))
	for _, c := range ctrls {
		b, err := os.ReadFile(filepath.Join(c, "serial"))
		if err != nil || strings.TrimSpace(string(b)) != serial {
			continue
		}
		nss, _ := filepath.Glob(filepath.Join(c, filepath.Base(c)+"n*"))
		for _, ns := range nss {
			p := filepath.Join(l.Dev, filepath.Base(ns))
			if isBlock(p) {
				return p, true
			}
		}
	}
	if serial != "" {
		p := filepath.Join(l.Dev, "disk", "by-id", "nvme-Amazon_Elastic_Block_Store_"+serial)
		if t, err := filepath.EvalSymlinks(p); err == nil && isBlock(t) {
			return t, true
		}
	}
	// Xen: the name asked for, as xvdX or sdX. On an NVMe host these may be
	// udev symlinks to another volume's namespace, so only real nodes count
	// and only when no NVMe controller exists.
	if len(ctrls) == 0 {
		for _, p := range l.xenNames(a.Device) {
			if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSymlink == 0 && isBlock(p) {
				return p, true
			}
		}
	}
	return "", false
}

func isBlock(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}
