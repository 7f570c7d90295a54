package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Register registers the snapshot as s.NewImage with the finalizer. The
// image is deregistered if a later step fails.
type Register struct{}

// Name is the stage's.
func (Register) Name() string { return "register" }

// Run registers the image and registers its deregistration on failure.
func (Register) Run(ctx context.Context, s *State) error {
	im, err := s.Env.Finalizer.Register(ctx, plugin.RegisterSnapshot{
		Snapshot: s.Snapshot, Base: s.Base, SizeBytes: s.Size, VolumeType: s.VolumeType, Image: s.NewImage,
	})
	if err != nil {
		return err
	}
	s.Image = im
	s.Undo.Rollback("deregister image "+im.ID, func(ctx context.Context) error { return s.Env.Cloud.DeregisterImage(ctx, im.ID) })
	return nil
}
