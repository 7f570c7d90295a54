package bake

import "context"

// manifest lists every package installed in the image, kept with it: the
// list the provisioner read with the package (plugin.PackageInfo.
// Installed) when nothing ran in the image since, else read again.
type manifest struct{}

func (manifest) Name() string { return "manifest" }

func (manifest) Run(ctx context.Context, s *State) (err error) {
	if s.Package != nil && s.Package.Installed != nil && !s.RanInImage {
		s.Manifest = s.Package.Installed
		return nil
	}
	s.Manifest, err = s.Env.Provisioner.Manifest(ctx, s.Chroot)
	return err
}
