package bake

import (
	"context"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/plugin"
)

// mount mounts the volume's root filesystem under the state directory and
// prepares the chroot; it is unmounted before the snapshot, or when the
// bake ends (--preserve-on-error keeps it).
type mount struct{}

func (mount) Name() string { return "mount" }

func (mount) Run(ctx context.Context, s *State) (err error) {
	s.MountPoint = filepath.Join(s.Env.StateDir, "mnt", s.Volume.ID)
	// The chroot is kept even on an error, so it can be preserved.
	if s.Req.ScriptNetwork {
		s.Log.Warn("--script-network: package scripts run with the bake host's network (its loopback, its metadata service); the image is tagged script_network=true")
	}
	s.Chroot, err = s.Env.Distro.Enter(ctx, plugin.MountOptions{Device: s.Device, Partition: s.Req.Partition, MountPoint: s.MountPoint,
		ScriptNetwork: s.Req.ScriptNetwork, NoFlush: plugin.ScratchVolumes(s.Env.Cloud)})
	if err != nil {
		return err
	}
	s.Unmount = s.Undo.Release("unmount "+s.MountPoint, "umount -R "+s.MountPoint, s.Chroot.Close)
	return nil
}

func (mount) Done(_ context.Context, s *State) error {
	s.Log.Info("chroot ready", "path", s.MountPoint)
	return nil
}
