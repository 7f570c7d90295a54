// Package tagging holds the tagging_ebs finalizer: unmount, snapshot the
// volume, register the snapshot as an image with lineage tags. If anything
// after the snapshot fails, the snapshot is deleted again, so a failed bake
// leaves no half-registered image behind.
package tagging

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Settings are the finalizer's settings (plugins: finalizer.tagging_ebs:).
type Settings struct {
	// RootDevice is the registered image's root device name.
	RootDevice string `yaml:"root_device"`
	// EphemeralDevices are mapped to ephemeral0..N in order.
	EphemeralDevices []string `yaml:"ephemeral_devices"`
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindFinalizer, Name: "tagging_ebs",
		Description: "snapshot the volume and register a volume-backed image with tags",
		NewConfig: func() any {
			return &Settings{RootDevice: "/dev/sda1", EphemeralDevices: []string{"/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde"}}
		},
		New: func(cfg any, d plugin.Deps) (any, error) {
			return &EBS{s: cfg.(*Settings), cloud: d.Cloud, log: d.Logger}, nil
		},
	})
}

// Cloud is what the finalizer uses of a cloud: it makes and removes a
// snapshot, and registers and deregisters an image.
type Cloud interface {
	plugin.SnapshotStore
	plugin.ImageStore
}

// EBS is the finalizer.
type EBS struct {
	s     *Settings
	cloud Cloud
	log   *slog.Logger
}

// StoreType is "ebs": images are backed by a volume snapshot.
func (e *EBS) StoreType() string { return "ebs" }

// Finalize unmounts, snapshots and registers.
func (e *EBS) Finalize(ctx context.Context, r plugin.FinalizeRequest) (*plugin.Image, error) {
	if err := r.Unmount(ctx); err != nil {
		return nil, err
	}
	snap, err := e.cloud.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: r.Volume.ID, Description: "aminator: " + r.Image.Name, Tags: r.SnapshotTags})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", r.Volume.ID, err)
	}
	e.log.Info("snapshot created", "snapshot", snap.ID)
	r.OnFailure("delete snapshot "+snap.ID, func(ctx context.Context) error { return e.cloud.DeleteSnapshot(ctx, snap.ID) })
	req := r.Image
	req.RootDeviceName, req.BlockDevices = Mappings(r.Base, snap.ID, (r.SizeBytes+(1<<30-1))>>30, r.VolumeType, e.s.RootDevice, e.s.EphemeralDevices)
	im, err := e.cloud.RegisterImage(ctx, req)
	if err != nil {
		return nil, err
	}
	r.OnFailure("deregister image "+im.ID, func(ctx context.Context) error { return e.cloud.DeregisterImage(ctx, im.ID) })
	return im, nil
}

// Mappings are the new image's block device mappings: the base's, with its
// root replaced by the new snapshot; for an image with no base (a
// foundation), the root at rootDevice and ephemeral0..N.
func Mappings(base *plugin.Image, snap string, gib int64, volType, rootDevice string, ephemerals []string) (string, []plugin.BlockDeviceMapping) {
	if base != nil && base.Root() != nil {
		out := make([]plugin.BlockDeviceMapping, 0, len(base.BlockDevices))
		for _, b := range base.BlockDevices {
			if b.DeviceName == base.RootDeviceName {
				b.SnapshotID, b.VolumeSizeGiB, b.DeleteOnTermination = snap, gib, true
				if volType != "" {
					b.VolumeType = volType
				}
			}
			out = append(out, b)
		}
		return base.RootDeviceName, out
	}
	out := []plugin.BlockDeviceMapping{{DeviceName: rootDevice, SnapshotID: snap, VolumeSizeGiB: gib, VolumeType: volType, DeleteOnTermination: true}}
	for i, d := range ephemerals {
		out = append(out, plugin.BlockDeviceMapping{DeviceName: d, VirtualName: fmt.Sprintf("ephemeral%d", i)})
	}
	return rootDevice, out
}
