package bake

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/image/pkgfile"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
)

// baseArch is the architecture of the base image's programs, which run
// the package's scripts: the base's as registered, else the image's.
func (s *State) baseArch() string {
	if s.Base != nil && s.Base.Architecture != "" {
		return s.Base.Architecture
	}
	return s.Arch
}

// checkPackageArch refuses a package file built for another architecture
// than the base image's, before any work: dpkg and rpm would refuse it
// only once a volume is made, attached and mounted. A repository package
// (no file yet) is the image's own architecture's by the package
// manager's choice.
type checkPackageArch struct{}

func (checkPackageArch) Name() string { return "" }

func (checkPackageArch) Run(_ context.Context, s *State) error {
	k := s.Known
	if k == nil || k.Arch == "" {
		return nil
	}
	arch := s.baseArch()
	if pkgfile.FitsArch(k.Arch, arch) {
		return nil
	}
	built := k.Arch
	if a := pkgfile.ImageArch(k.Arch); a != "" && a != k.Arch {
		built += " (" + a + ")"
	}
	return &UsageError{fmt.Errorf("package %s %s is built for %s, and base image %s (%s) is %s: "+
		"bake it on a base of its architecture, or build it for %s (or for all architectures: all, noarch)",
		k.Name, k.FullVersion, built, s.Base.ID, s.Base.Name, arch, arch)}
}

// checkEmulation makes sure this host runs the base image's programs
// before any volume is made: natively, or under qemu-user through a
// binfmt_misc handler with the F flag (the sandbox pivots into the
// image, where the emulator is not). With none it registers the host's
// static emulator when binfmt.register allows, and else stops with how
// to register one.
type checkEmulation struct{}

func (checkEmulation) Name() string { return "" }

func (checkEmulation) Run(_ context.Context, s *State) error {
	arch := s.baseArch()
	if binfmt.Native(arch) {
		return nil
	}
	dir := s.Env.Binfmt.Dir
	if dir == "" {
		dir = binfmt.Dir
	}
	var h binfmt.Handler
	err := binfmt.View(dir, func(d string) (err error) {
		if h, err = binfmt.Find(d, arch); err != nil {
			return binfmt.Check(d, arch)
		}
		return nil
	})
	switch {
	case err == nil:
		s.Log.Info("the base image is another architecture's: its programs run under emulation", "arch", arch, "host", binfmt.Host(), "handler", h.Name, "interpreter", h.Interpreter)
		return nil
	case !errors.Is(err, binfmt.ErrNoHandler):
		return fmt.Errorf("base image %s is %s: %w", s.Base.ID, arch, err)
	case !s.Env.Binfmt.Register:
		return fmt.Errorf("base image %s is %s: %w\n  or let bakes register it themselves: binfmt: {register: true} in aminator.yml", s.Base.ID, arch, err)
	}
	emulator, eerr := binfmt.Emulator(arch)
	if eerr != nil {
		return fmt.Errorf("base image %s is %s, and binfmt.register allows registering an emulator, but: %w\n%w", s.Base.ID, arch, eerr, err)
	}
	if s.Req.DryRun {
		s.Log.Info("no binfmt_misc handler: the bake would register one, as binfmt.register allows", "arch", arch, "emulator", emulator)
		return nil
	}
	if err := binfmt.View(dir, func(d string) error { return binfmt.Register(d, arch, emulator) }); err != nil {
		return fmt.Errorf("base image %s is %s: register %s, as binfmt.register allows: %w", s.Base.ID, arch, emulator, err)
	}
	s.Log.Info("registered a binfmt_misc handler for the whole host, as binfmt.register allows", "arch", arch, "emulator", emulator, "dir", dir)
	return nil
}
