// Package tagging holds the tagging_ebs finalizer: snapshot the unmounted
// volume, then register the snapshot as a volume-backed image with lineage
// tags. They are two steps of a bake, each undone by the bake (the
// snapshot deleted, the image deregistered) when a later step fails, so a
// failed bake leaves no half-registered image behind.
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

// Snapshot snapshots the volume.
func (e *EBS) Snapshot(ctx context.Context, r plugin.SnapshotVolume) (*plugin.Snapshot, error) {
	snap, err := e.cloud.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: r.Volume.ID, Description: "aminator: " + r.ImageName, Tags: r.Tags})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", r.Volume.ID, err)
	}
	e.log.Info("snapshot created", "snapshot", snap.ID)
	return snap, nil
}

// Register registers the snapshot as a volume-backed image: the base's
// block device mappings with the snapshot as root.
func (e *EBS) Register(ctx context.Context, r plugin.RegisterSnapshot) (*plugin.Image, error) {
	req := r.Image
	req.RootDeviceName, req.BlockDevices = Mappings(r.Base, r.Snapshot.ID, (r.SizeBytes+(1<<30-1))>>30, r.VolumeType, e.s.RootDevice, e.s.EphemeralDevices)
	return e.cloud.RegisterImage(ctx, req)
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
