package bake

import "context"

// AttachVolume attaches the volume to this host (at the device given with
// --block-device, else a free one) and finds its local device. It is
// detached when the bake ends.
type AttachVolume struct{}

// Name is the stage's.
func (AttachVolume) Name() string { return "attach volume" }

// Run attaches the volume and registers its detaching.
func (AttachVolume) Run(ctx context.Context, s *State) error {
	dev, err := s.Env.Volume.Attach(ctx, s.Volume, s.Req.BlockDevice)
	if err != nil {
		return err
	}
	vol := s.Volume
	s.Device = dev
	s.Undo.Release("detach volume "+vol.ID, "the volume is detached once it is unmounted", func(ctx context.Context) error { return s.Env.Volume.Detach(ctx, vol) })
	return nil
}

// Done says where it is.
func (AttachVolume) Done(_ context.Context, s *State) error {
	s.Log.Info("volume attached", "device", s.Device)
	return nil
}
