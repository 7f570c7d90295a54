package bake

import "context"

// growFilesystem makes the root partition and filesystem fill a volume
// larger than the base's root (--root-volume-size), where that is done
// unmounted: fsck, partition, resize2fs.
type growFilesystem struct{}

func (growFilesystem) Name() string { return "grow filesystem" }

func (growFilesystem) Run(ctx context.Context, s *State) error {
	return s.Env.Volume.Grow(ctx, s.Device, s.Req.Partition)
}
