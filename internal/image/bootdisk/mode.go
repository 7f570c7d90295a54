package bootdisk

import (
	"fmt"
	"strings"
)

// EC2's boot modes.
const (
	ModeLegacyBIOS    = "legacy-bios"
	ModeUEFI          = "uefi"
	ModeUEFIPreferred = "uefi-preferred"
)

// fixHint says how to get a disk that boots.
const fixHint = "build the foundation with --profile cloud (GRUB for both legacy BIOS and UEFI) or --layout uefi, or bake on a base whose disk boots"

// Mode is the boot mode to register an image of architecture arch with,
// given its disk's loaders. requested "" derives it: both loaders make
// uefi-preferred, UEFI only uefi, BIOS only legacy-bios. A requested mode
// needs its loaders: legacy-bios a BIOS one, uefi a UEFI one for arch,
// uefi-preferred both; arm64 (Graviton) boots uefi only. A refusal says
// which loader is missing and wraps ErrCannotBoot, and ErrNoLoader when
// the disk has no loader arch can use at all.
func Mode(l Loaders, arch, requested string) (string, error) {
	a := normArch(arch)
	uefi, bios := l.HasUEFI(a), l.BIOS && a != "arm64"
	if requested != "" && requested != ModeLegacyBIOS && requested != ModeUEFI && requested != ModeUEFIPreferred {
		return "", fmt.Errorf("boot mode %q: legacy-bios, uefi or uefi-preferred", requested)
	}
	if !uefi && !bios {
		return "", noLoader(l, a)
	}
	if a == "arm64" && requested != "" && requested != ModeUEFI {
		return "", refuse(false, "boot mode %s: arm64 instances boot through UEFI only; register boot mode uefi", requested)
	}
	switch {
	case requested == "" && bios && uefi:
		return ModeUEFIPreferred, nil
	case requested == "" && uefi:
		return ModeUEFI, nil
	case requested == "":
		return ModeLegacyBIOS, nil
	case requested != ModeUEFI && !bios:
		return "", refuse(false, "boot mode %s needs a BIOS boot loader, and the disk has none (%s); it boots as %s: register that mode, or install GRUB for BIOS (grub-pc) with a BIOS boot partition",
			requested, l.BIOSNote, ModeUEFI)
	case requested != ModeLegacyBIOS && !uefi:
		return "", refuse(false, "boot mode %s needs a UEFI loader for %s (%s), and the disk has none (%s); it boots as %s: register that mode, or add an EFI system partition with that loader",
			requested, a, loaderPath(a), uefiNote(l, a), ModeLegacyBIOS)
	}
	return requested, nil
}

// noLoader is the refusal of a disk with nothing arch's firmware can boot.
func noLoader(l Loaders, a string) error {
	if a == "arm64" {
		return refuse(true, "the disk has no boot loader for arm64: EC2's firmware (UEFI only on Graviton) would find nothing to boot (no UEFI loader: %s); %s",
			uefiNote(l, a), fixHint)
	}
	return refuse(true, "the disk has no boot loader: EC2's firmware would find nothing to boot (no BIOS loader: %s; no UEFI loader for %s: %s); %s",
		l.BIOSNote, a, uefiNote(l, a), fixHint)
}

// uefiNote says why the disk has no UEFI loader for a.
func uefiNote(l Loaders, a string) string {
	if l.UEFI {
		return "its UEFI loaders are for " + strings.Join(l.UEFIArchs, ", ") + " only"
	}
	return l.UEFINote
}

// loaderPath is the removable-media loader UEFI firmware of arch starts.
func loaderPath(a string) string {
	for name, arch := range loaderArch {
		if arch == a {
			return `\EFI\BOOT\` + name
		}
	}
	return "no UEFI loader path for " + a
}

// normArch names an architecture as EC2 does; "" is x86_64.
func normArch(arch string) string {
	switch arch {
	case "", "x86_64", "amd64":
		return "x86_64"
	case "arm64", "aarch64":
		return "arm64"
	}
	return arch
}

// refusal is a boot mode the disk cannot boot.
type refusal struct {
	msg      string
	noLoader bool
}

func refuse(noLoader bool, format string, a ...any) error {
	return &refusal{msg: fmt.Sprintf(format, a...), noLoader: noLoader}
}

func (r *refusal) Error() string { return r.msg }

// Is makes a refusal ErrCannotBoot, and ErrNoLoader when nothing boots.
func (r *refusal) Is(target error) bool {
	return target == ErrCannotBoot || (r.noLoader && target == ErrNoLoader)
}
