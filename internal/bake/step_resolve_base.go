package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/plugin"
)

// resolveBase finds the base image: by id, by name, or the newest of a
// family with a channel label.
type resolveBase struct{}

func (resolveBase) Name() string { return "resolve base" }

func (resolveBase) Run(ctx context.Context, s *State) (err error) {
	if s.Req.BaseLabel != "" {
		s.Base, err = channels.Resolve(ctx, s.Env.Cloud, s.Req.BaseName, s.Req.BaseLabel)
		return err
	}
	s.Base, err = s.Env.Cloud.Image(ctx, plugin.ImageQuery{ID: s.Req.BaseID, Name: s.Req.BaseName})
	return err
}

func (resolveBase) Done(_ context.Context, s *State) error {
	if s.Req.BaseLabel != "" {
		s.Log.Info("base image resolved", "family", s.Req.BaseName, "label", s.Req.BaseLabel, "id", s.Base.ID, "name", s.Base.Name)
	} else {
		s.Log.Info("base image", "id", s.Base.ID, "name", s.Base.Name)
	}
	return nil
}
