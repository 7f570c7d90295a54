package bake

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// checkPlannedName checks the image name free when it is known without a
// volume: given with -n, or made from a package file's or a given version.
// A repository package's is checked once the bake resolves it.
type checkPlannedName struct{}

func (checkPlannedName) Name() string { return "" }

func (checkPlannedName) Run(ctx context.Context, s *State) error {
	switch {
	case s.Req.Name != "":
		s.Name = naming.ImageName(s.Req.Name, naming.Fields{Suffix: s.Req.Suffix})
	case s.Known != nil:
		s.Name = s.imageName(s.Known)
	default:
		s.Log.Info("the image name depends on the version the repositories offer: it is checked once the package is resolved", "package", s.Ref.Raw)
		return nil
	}
	return CheckName(ctx, s.Env.Cloud, s.Name)
}

// CheckName refuses, with a usage error, a name RegisterImage would refuse.
func CheckName(ctx context.Context, c plugin.Cloud, name string) error {
	var err error
	if nc, ok := c.(plugin.NameChecker); ok {
		err = nc.CheckName(ctx, name)
	} else if im, ierr := c.Image(ctx, plugin.ImageQuery{Name: name}); ierr == nil {
		err = fmt.Errorf("an image named %q (%s) %w", name, im.ID, plugin.ErrExists)
	} else if !errors.Is(ierr, plugin.ErrNotFound) {
		err = ierr
	}
	if errors.Is(err, plugin.ErrExists) {
		return &UsageError{fmt.Errorf("%w: pick another name with -n or -s", err)}
	}
	return err
}
