package bake

import "context"

// manifest lists every package installed in the image, kept with it.
type manifest struct{}

func (manifest) Name() string { return "manifest" }

func (manifest) Run(ctx context.Context, s *State) (err error) {
	s.Manifest, err = s.Env.Provisioner.Manifest(ctx, s.Chroot)
	return err
}
