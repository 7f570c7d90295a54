package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Snapshot snapshots the unmounted volume with the finalizer, tagged with
// s.SnapshotTags (and the disk digest where the cloud keeps it in a tag). The snapshot is deleted if a later step fails; a bake
// killed before it registers leaves it tagged with the bake's id, which gc
// finds.
type Snapshot struct{}

// Name is the stage's.
func (Snapshot) Name() string { return "snapshot" }

// Run snapshots the volume and registers the snapshot's deletion on failure.
func (Snapshot) Run(ctx context.Context, s *State) error {
	snap, err := s.Env.Finalizer.Snapshot(ctx, plugin.SnapshotVolume{Volume: s.Volume, ImageName: s.NewImage.Name,
		Image: s.NewImage, Device: s.Device, Tags: snapshotTags(s)})
	if err != nil {
		return err
	}
	s.Snapshot = snap
	remove := s.Env.Cloud.DeleteSnapshot
	if r, ok := s.Env.Finalizer.(plugin.SnapshotRemover); ok {
		remove = r.RemoveSnapshot // an S3 bundle
	}
	s.Undo.Rollback("delete snapshot "+snap.ID, func(ctx context.Context) error { return remove(ctx, snap.ID) })
	return nil
}
