package bake

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
)

// bootMode reads the boot loaders on the unmounted volume (the disk
// itself, never the base's tags) and picks the boot mode to register: the
// request's, else the base's, else the one the loaders make. tag is the
// image's boot tag (bootdisk.Loaders.Tag; "" when the disk could not be
// read on a cloud that does not need it).
//
// On a cloud that boots through firmware (EC2) a disk that cannot boot in
// that mode is refused with the reason, and the bake's undo stack removes
// what it made. Elsewhere (the local cloud, whose boot test starts a
// loader-less image's kernel directly) a disk with no loader is
// registered with no boot mode, unless one was asked for.
func bootMode(ctx context.Context, s *State) (mode, tag string, err error) {
	firmware := plugin.BootsThroughFirmware(s.Env.Cloud)
	requested := s.Req.BootMode
	if requested == "" {
		requested = s.Base.BootMode
	}
	l, err := bootdisk.Detect(ctx, s.Device)
	switch {
	case err != nil && firmware:
		return "", "", fmt.Errorf("register %s: %w", s.Name, err)
	case err != nil:
		s.Log.Warn("the image's boot loaders could not be read: it gets no boot tag", "err", err)
		return requested, "", nil
	case s.Req.VMType == "paravirtual": // PV-GRUB boots the kernel, whatever the loaders
		return "", l.Tag(), nil
	}
	mode, err = bootdisk.Mode(l, s.Arch, requested)
	if err != nil && !firmware && s.Req.BootMode == "" && errors.Is(err, bootdisk.ErrNoLoader) {
		s.Log.Info("boot loaders", "found", l.String(), "boot_mode", "none: the image boots by its kernel only")
		return "", l.Tag(), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("register %s: %w", s.Name, err)
	}
	s.Log.Info("boot loaders", "found", l.String(), "boot_mode", mode)
	return mode, l.Tag(), nil
}
