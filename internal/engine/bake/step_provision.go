package bake

import "context"

// provision installs the package with the image's package manager.
type provision struct{}

func (provision) Name() string { return "provision" }

func (provision) Run(ctx context.Context, s *State) error {
	info, err := s.Env.Provisioner.Provision(ctx, s.Chroot, s.Ref)
	if err != nil {
		return err
	}
	s.Package = info
	return nil
}

// Done checks the name the installed package makes, unless it was
// checked already.
func (provision) Done(ctx context.Context, s *State) error {
	info := s.Package
	s.Log.Info("package installed", "name", info.Name, "version", info.FullVersion, "arch", info.Arch)
	name := s.imageName(info)
	if name != s.Name {
		if err := CheckName(ctx, s.Env.Cloud, name); err != nil {
			return err
		}
	}
	s.Name = name
	return nil
}
