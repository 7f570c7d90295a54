package bake

import "context"

// growMounted finishes growing the filesystems that grow only mounted (XFS).
type growMounted struct{}

func (growMounted) Name() string { return "grow mounted filesystem" }

func (growMounted) Run(ctx context.Context, s *State) error {
	return s.Env.Volume.GrowMounted(ctx, s.MountPoint)
}
