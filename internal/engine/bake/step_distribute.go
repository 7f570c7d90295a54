package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// distribute copies the image to other regions, shares it and schedules
// its deprecation (--copy-to, --share-with, --deprecate-at).
type distribute struct{}

func (distribute) Name() string { return "distribute" }

func (distribute) Run(ctx context.Context, s *State) (err error) {
	d := s.Req.Distribution
	d.Job = s.Req.BakeID
	s.Copies, err = s.Env.Cloud.(plugin.Distributor).Distribute(ctx, s.Image, d)
	return err
}

func (distribute) Done(_ context.Context, s *State) error {
	for _, c := range s.Copies {
		s.Log.Info("image copied", "region", c.Region, "id", c.ImageID)
	}
	return nil
}
