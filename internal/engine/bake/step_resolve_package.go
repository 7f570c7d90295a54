package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/plugin"
)

// resolvePackage asks the image's package manager which version of a
// repository package it would install, and pins it, so that the name it
// makes is checked free before anything is installed.
type resolvePackage struct{}

// resolvable says the name is not known yet and the provisioner can
// resolve; one that cannot has the name checked right after the install.
func resolvable(s *State) bool {
	_, ok := s.Env.Provisioner.(plugin.Inspector)
	return ok && s.Name == ""
}

func (resolvePackage) Name() string { return "resolve package" }

func (resolvePackage) Run(ctx context.Context, s *State) (err error) {
	s.Ref, s.Known, err = s.Env.Provisioner.(plugin.Inspector).Resolve(ctx, s.Chroot, s.Ref)
	return err
}

func (resolvePackage) Done(ctx context.Context, s *State) error {
	if s.Known == nil {
		return nil
	}
	s.Log.Info("package resolved", "name", s.Known.Name, "version", s.Known.FullVersion)
	name := s.imageName(s.Known)
	if err := CheckName(ctx, s.Env.Cloud, name); err != nil {
		return err
	}
	s.Name = name
	return nil
}
