package bake

import (
	"context"
	"fmt"
)

// adoptVolume takes the volume given with -V (an external pool's) instead
// of creating one: it is baked on but never deleted. One attached to this
// host already is used where it is.
type adoptVolume struct{}

func (adoptVolume) Name() string { return "adopt volume" }

func (adoptVolume) Run(ctx context.Context, s *State) (err error) {
	s.Volume, s.Device, err = s.Env.Volume.Adopt(ctx, s.Req.VolumeID)
	return err
}

func (adoptVolume) Done(_ context.Context, s *State) error {
	vol := s.Volume
	s.Log.Info("using the given volume", "volume", vol.ID, "device", s.Device)
	if vol.SizeBytes < s.Size {
		return fmt.Errorf("volume %s (%d bytes) is smaller than the base image's root (%d bytes)", vol.ID, vol.SizeBytes, s.Size)
	}
	s.Size, s.Grow = vol.SizeBytes, s.Grow && vol.SizeBytes > s.BaseBytes
	return nil
}
