package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// CreateVolume makes the work volume: from the base's root snapshot, or
// an empty one when there is no base (a foundation), of s.Size bytes. It
// is deleted when the bake ends; --preserve-on-error keeps it.
type CreateVolume struct {
	// Tags are the volume's tags, by which gc finds a killed bake's.
	Tags func(ctx context.Context, s *State) plugin.Tags
}

// Name is the stage's.
func (CreateVolume) Name() string { return "create volume" }

// Run creates the volume and registers its deletion.
func (c CreateVolume) Run(ctx context.Context, s *State) error {
	vol, err := s.Env.Volume.Create(ctx, s.Base, s.Size, c.Tags(ctx, s))
	if err != nil {
		return err
	}
	s.Volume = vol
	s.Undo.Release("delete volume "+vol.ID, "aminate volumes rm "+vol.ID, func(ctx context.Context) error { return s.Env.Volume.Delete(ctx, vol) })
	return nil
}

// Done says what was made.
func (CreateVolume) Done(_ context.Context, s *State) error {
	s.Log.Info("volume created", "volume", s.Volume.ID, "bytes", s.Volume.SizeBytes)
	return nil
}
