package foundation

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

// Options describe a foundation image.
type Options struct {
	// Name is the family; the image is named {Name}-{Suffix}. Default debian-{release}.
	Name    string
	Suffix  string
	Release string
	// Mirror is the Debian mirror; default: the one the host's apt uses.
	Mirror  string
	SizeGiB int
	// Profile is cloud (the default: an image EC2 and other clouds can
	// launch and a person can log into) or minimal (a pristine Debian).
	Profile string
	// Layout is hybrid (cloud's default on x86_64: GRUB for BIOS and UEFI
	// on one GPT disk), grub-uefi (cloud's default on arm64: GRUB for UEFI
	// only, as Graviton boots), uefi (systemd-boot), whole (minimal's
	// default: the filesystem on the whole device, no loader) or gpt (no
	// loader).
	Layout  string
	FS      string // ext4 or xfs
	Kernel  bool
	Include []string
	Arch    string // x86_64 or arm64
	Creator string
	Tags    map[string]string
	// ScratchDir is where the tree is built; default /dev/shm when it has room.
	ScratchDir string
	BakeID     string
	// BinfmtDir is where binfmt_misc is mounted (default binfmt.Dir; tests
	// give a stand-in): a foreign architecture's tree needs its handler.
	BinfmtDir string
	// SourceDateEpoch, when set, makes the foundation reproducible
	// (repro.go): the same inputs give the same disk, byte for byte, its
	// times clamped to this many seconds since 1970.
	SourceDateEpoch *int64
}

var (
	releaseRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)
	pkgRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	familyRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9().\-/_]{0,100}$`)
)

// debArch maps an image architecture to Debian's.
var debArch = map[string]string{"x86_64": "amd64", "arm64": "arm64", "i386": "i386"}

var kernelPkg = map[string]string{"amd64": "linux-image-amd64", "arm64": "linux-image-arm64", "i386": "linux-image-686"}

func (o *Options) validate() error {
	if o.Release == "" {
		o.Release = "bookworm"
	}
	if !releaseRE.MatchString(o.Release) {
		return fmt.Errorf("release %q: a Debian codename such as bookworm or trixie", o.Release)
	}
	if o.Name == "" {
		o.Name = "debian-" + o.Release
	}
	if !familyRE.MatchString(o.Name) {
		return fmt.Errorf("name %q: letters, digits and ().-/_ only", o.Name)
	}
	if o.Arch == "" {
		o.Arch = "x86_64"
	}
	if _, ok := debArch[o.Arch]; !ok {
		return fmt.Errorf("arch %q: x86_64, arm64 or i386", o.Arch)
	}
	if o.SizeGiB == 0 {
		o.SizeGiB = 2
	}
	if o.SizeGiB < 1 || o.SizeGiB > 1024 {
		return fmt.Errorf("size %d GiB: 1 to 1024", o.SizeGiB)
	}
	if err := o.validateLayout(); err != nil {
		return err
	}
	switch o.FS {
	case "":
		o.FS = "ext4"
	case "ext4", "xfs":
	default:
		return fmt.Errorf("filesystem %q: ext4 or xfs", o.FS)
	}
	if o.SourceDateEpoch != nil && o.FS == "xfs" {
		return errors.New("--source-date-epoch needs --fs ext4: xfs is filled through a mount, and the kernel's inode times and allocation are not reproducible")
	}
	for _, p := range o.Include {
		if !pkgRE.MatchString(p) {
			return fmt.Errorf("package %q is not a valid Debian package name", p)
		}
	}
	if o.Mirror != "" {
		u, err := url.Parse(o.Mirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			return fmt.Errorf("mirror %q: an http, https or file URL", o.Mirror)
		}
	}
	return nil
}

// validateLayout checks the profile and the layout together: a cloud image
// must boot by itself, so it has a boot loader and a kernel.
func (o *Options) validateLayout() error {
	switch o.Profile {
	case "":
		o.Profile = ProfileCloud
	case ProfileCloud, ProfileMinimal:
	default:
		return fmt.Errorf("profile %q: cloud or minimal", o.Profile)
	}
	if o.Layout == "" {
		o.Layout = map[string]string{ProfileCloud: "hybrid", ProfileMinimal: "whole"}[o.Profile]
		if o.Profile == ProfileCloud && o.Arch == "arm64" {
			o.Layout = "grub-uefi"
		}
	}
	switch o.Layout {
	case "whole", "gpt":
		if o.Profile == ProfileCloud {
			return fmt.Errorf("layout %s has no boot loader, which the cloud profile needs (EC2's firmware boots the disk's own loader): use --layout hybrid or uefi, or --profile minimal", o.Layout)
		}
	case "hybrid", "grub-uefi", "uefi":
		if !o.Kernel {
			return fmt.Errorf("layout %s boots a kernel: it cannot go with --no-kernel", o.Layout)
		}
		if err := layoutArch(o.Layout, o.Arch); err != nil {
			return err
		}
	default:
		return fmt.Errorf("layout %q: hybrid, grub-uefi, uefi, whole or gpt", o.Layout)
	}
	if o.Profile == ProfileCloud && !o.Kernel {
		return errors.New("the cloud profile boots a kernel: --no-kernel needs --profile minimal")
	}
	return nil
}

// layoutArch refuses a boot loader layout the architecture cannot boot:
// arm64 (Graviton) boots through UEFI only, so GRUB for UEFI alone.
func layoutArch(layout, arch string) error {
	switch {
	case arch == "arm64" && layout == "hybrid":
		return errors.New("layout hybrid adds a legacy BIOS loader, and arm64 (Graviton) boots through UEFI only: use --layout grub-uefi (the cloud profile's default on arm64)")
	case arch == "arm64" && layout == "uefi":
		return errors.New("layout uefi (systemd-boot) is built for x86_64: on arm64 use --layout grub-uefi (the cloud profile's default on arm64)")
	case arch == "i386":
		return fmt.Errorf("layout %s is built for x86_64 and arm64, not i386", layout)
	}
	return nil
}
