// Package volume holds the "linux" volume plugin: it creates the bake's
// volume from the base image's root snapshot, attaches it through the cloud
// and the blockdevice plugin, grows the root filesystem when asked, and
// detaches and deletes it afterwards. It works with any cloud.
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindVolume, Name: "linux",
		Description: "volume from the base image's root snapshot; e2fsck/resize2fs to grow",
		New: func(_ any, d plugin.Deps) (any, error) {
			return &Linux{cloud: d.Cloud, bd: d.BlockDevice, log: d.Logger, slots: map[string]plugin.Slot{}}, nil
		},
	})
}

// Cloud is what the volume plugin uses of a cloud: its volumes, and where
// this host is (to tell an adopted volume attached here from one attached
// elsewhere). A cloud that is also a plugin.VolumeAdopter has adopted
// volumes handed over to this process.
type Cloud interface {
	plugin.VolumeStore
	plugin.HostInfo
}

// Linux is the volume plugin.
type Linux struct {
	cloud Cloud
	bd    plugin.BlockDevice
	log   *slog.Logger
	mu    sync.Mutex
	slots map[string]plugin.Slot
}

// Create makes the bake's volume.
func (l *Linux) Create(ctx context.Context, base *plugin.Image, size int64, tags plugin.Tags) (*plugin.Volume, error) {
	if base == nil {
		return l.cloud.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: size, Tags: tags})
	}
	root := base.Root()
	if root == nil || root.SnapshotID == "" {
		return nil, fmt.Errorf("base image %s has no root snapshot at %s", base.ID, base.RootDeviceName)
	}
	return l.cloud.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: root.SnapshotID, SizeBytes: size, Tags: tags})
}

// Attach attaches v at device ("" picks one) and returns its local device.
// A volume attached to this host already (a pool's kept attached) is used
// where it is, when no other device is asked for.
func (l *Linux) Attach(ctx context.Context, v *plugin.Volume, device string) (string, error) {
	if dev, ok, err := l.attachedHere(ctx, v, device); ok || err != nil {
		return dev, err
	}
	slot, err := l.bd.Allocate(ctx, device)
	if err != nil {
		return "", fmt.Errorf("allocate device for %s: %w", v.ID, err)
	}
	att, err := l.cloud.AttachVolume(ctx, v.ID, slot.Name)
	if err != nil {
		// The request may have gone through before the wait failed or was
		// cancelled: detach, so the volume can be deleted.
		if derr := l.cloud.DetachVolume(context.WithoutCancel(ctx), v.ID); derr != nil {
			l.log.Debug("detach after a failed attach", "volume", v.ID, "err", derr)
		}
		slot.Release()
		return "", err
	}
	l.mu.Lock()
	l.slots[v.ID] = slot
	l.mu.Unlock()
	dev, err := l.bd.Locate(ctx, att)
	if err != nil {
		if derr := l.Detach(context.WithoutCancel(ctx), v); derr != nil {
			err = errors.Join(err, derr)
		}
		return "", fmt.Errorf("find local device of %s: %w", v.ID, err)
	}
	return dev, nil
}

// attachedHere finds the local device of a volume already attached to
// this host (ok false: it is not). One attached at another device than
// the one asked for is detached, to be attached again.
func (l *Linux) attachedHere(ctx context.Context, v *plugin.Volume, device string) (string, bool, error) {
	if v.Device == "" || v.AttachedTo == "" {
		return "", false, nil
	}
	if h, err := l.cloud.Host(ctx); err != nil || h.InstanceID != v.AttachedTo {
		return "", false, err
	}
	if device != "" && device != v.Device {
		return "", false, l.cloud.DetachVolume(ctx, v.ID)
	}
	dev, err := l.bd.Locate(ctx, plugin.Attachment{VolumeID: v.ID, Device: v.Device})
	if err != nil {
		if derr := l.cloud.DetachVolume(context.WithoutCancel(ctx), v.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		return "", true, fmt.Errorf("find local device of %s: %w", v.ID, err)
	}
	return dev, true, nil
}

// Adopt takes an existing volume (-V). One attached to this host already
// is used where it is.
func (l *Linux) Adopt(ctx context.Context, id string) (*plugin.Volume, string, error) {
	v, err := l.cloud.Volume(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if a, ok := l.cloud.(plugin.VolumeAdopter); ok {
		if v, err = a.AdoptVolume(ctx, id); err != nil {
			return nil, "", err
		}
	}
	if v.State != "in-use" || v.Device == "" {
		return v, "", nil
	}
	h, _ := l.cloud.Host(ctx)
	if v.AttachedTo != "" && v.AttachedTo != h.InstanceID {
		return nil, "", fmt.Errorf("volume %s is attached to %s, not to this host (%s)", id, v.AttachedTo, h.InstanceID)
	}
	att := plugin.Attachment{VolumeID: v.ID, Device: v.Device}
	if strings.HasPrefix(v.Device, "/dev/loop") {
		att.LocalPath = v.Device
	}
	dev, err := l.bd.Locate(ctx, att)
	if err != nil {
		return nil, "", fmt.Errorf("volume %s is attached at %s but: %w", id, v.Device, err)
	}
	return v, dev, nil
}

// Detach detaches v and frees its slot.
func (l *Linux) Detach(ctx context.Context, v *plugin.Volume) error {
	err := l.cloud.DetachVolume(ctx, v.ID)
	l.mu.Lock()
	slot, ok := l.slots[v.ID]
	delete(l.slots, v.ID)
	l.mu.Unlock()
	if ok {
		slot.Release()
	}
	return err
}

// Delete deletes v.
func (l *Linux) Delete(ctx context.Context, v *plugin.Volume) error {
	return l.cloud.DeleteVolume(ctx, v.ID)
}

// GrowMounted grows an XFS root online (xfs_growfs); ext filesystems were
// grown before mounting, and are left alone.
func (l *Linux) GrowMounted(ctx context.Context, mnt string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	if st.Type != unix.XFS_SUPER_MAGIC {
		return nil
	}
	if err := logging.Host(ctx, l.log, "xfs_growfs", mnt); err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	return nil
}

// Grow makes the root filesystem fill the device: for a partition, the
// partition is grown first (it must be the last one) with sfdisk.
func (l *Linux) Grow(ctx context.Context, dev string, part int) error {
	target := dev
	if part > 0 {
		p, err := partition.Find(dev, part)
		if err != nil {
			return err
		}
		parts, _ := partition.Read(dev)
		for _, q := range parts {
			if q.Start > p.Start {
				return fmt.Errorf("grow: partition %d is not the last on %s (partition %d follows it)", part, dev, q.Number)
			}
		}
		// sfdisk moves a GPT's backup header to the new end of the disk as it writes.
		cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-N", fmt.Sprint(part), dev)
		cmd.Stdin = strings.NewReader(", +\n")
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		if err := logging.Run(ctx, l.log, cmd, nil); err != nil {
			return fmt.Errorf("grow partition %d: %w", part, err)
		}
		pdev, release, err := partition.Open(ctx, dev, part)
		if err != nil {
			return fmt.Errorf("grow: %w", err)
		}
		defer release()
		target = pdev
	}
	fs, err := mount.DetectFS(target)
	if err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	switch fs {
	case "xfs":
		return nil // grown once mounted (GrowMounted)
	case "ext4":
	default:
		return fmt.Errorf("grow: growing a %s root filesystem is not supported (ext2/3/4 and xfs are)", fs)
	}
	if err := logging.Host(ctx, l.log, "e2fsck", "-f", "-y", target); err != nil {
		var ce *logging.CommandError
		// 1: errors corrected; 2: corrected, reboot advised. Both are fine here.
		if !errors.As(err, &ce) || ce.ExitCode > 2 {
			return fmt.Errorf("grow: %w", err)
		}
	}
	if err := logging.Host(ctx, l.log, "resize2fs", target); err != nil {
		return fmt.Errorf("grow: %w", err)
	}
	return nil
}
