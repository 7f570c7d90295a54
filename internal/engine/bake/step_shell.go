package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// shell opens a login shell in the chroot on the caller's terminal (-i),
// with the scripts' environment; what it does ends up in the image. It is
// untimed (the time is the person's), and its exit status is only warned
// about.
type shell struct{}

func (shell) Name() string { return "" }

func (shell) Run(ctx context.Context, s *State) error {
	s.RanInImage = true
	if err := s.Chroot.Run(ctx, plugin.Run{Argv: []string{"/bin/sh", "-l"}, Env: s.ScriptEnv, Interactive: true}); err != nil {
		s.Log.Warn("interactive shell ended with an error", "err", err)
	}
	return nil
}
