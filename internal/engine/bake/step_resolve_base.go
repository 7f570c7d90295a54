package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/engine/imageref"
)

// resolveBase finds the base image: by id, by name, or the newest of a
// family with a channel label.
type resolveBase struct{}

func (resolveBase) Name() string { return "resolve base" }

func (resolveBase) Run(ctx context.Context, s *State) (err error) {
	s.Base, err = imageref.Resolve(ctx, s.Env.Cloud, imageref.Ref{ID: s.Req.BaseID, Name: s.Req.BaseName, Label: s.Req.BaseLabel, Arch: s.Req.BaseArch})
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
