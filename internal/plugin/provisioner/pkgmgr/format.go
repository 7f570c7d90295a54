package pkgmgr

import (
	"fmt"

	"github.com/aminator-go/aminator/internal/image/debversion"
	"github.com/aminator-go/aminator/internal/image/pkgfile"
	"github.com/aminator-go/aminator/internal/image/rpmversion"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Format is a package format: Deb or RPM.
type Format string

// The package formats.
const (
	Deb Format = "deb"
	RPM Format = "rpm"
)

// Ext is the file name extension of the format's packages (".deb").
func (f Format) Ext() string { return "." + string(f) }

// ReadFile reads which package a file of this format holds, without
// running anything (package pkgfile).
func (f Format) ReadFile(path string) (*plugin.PackageInfo, error) {
	switch f {
	case Deb:
		return pkgfile.Deb(path)
	case RPM:
		return pkgfile.RPM(path)
	}
	return nil, fmt.Errorf("unknown package format %q", f)
}

// Compare orders two versions of the format: -1, 0 or 1 as a is older
// than, equal to or newer than b (dpkg's order for Deb, rpm's for RPM).
func (f Format) Compare(a, b string) int {
	if f == RPM {
		return rpmversion.Compare(a, b)
	}
	return debversion.Compare(a, b)
}

// Architectures only one of the two formats names: dpkg's all and amd64,
// rpm's noarch and x86_64, and so on.
var (
	debArchs = map[string]bool{"all": true, "amd64": true, "arm64": true, "armhf": true, "armel": true, "i386": true, "ppc64el": true, "mips64el": true}
	rpmArchs = map[string]bool{"noarch": true, "x86_64": true, "aarch64": true, "i686": true, "i586": true, "ppc64le": true, "armv7hl": true, "(none)": true}
)

// FormatOf tells which package manager listed a manifest, from the
// architectures its packages name (dpkg says amd64 and all, rpm x86_64 and
// noarch); a manifest that does not tell is taken for Deb, the order
// images diff used before it knew RPM's.
func FormatOf(pkgs []plugin.Package) Format {
	deb, rpm := 0, 0
	for _, p := range pkgs {
		switch {
		case debArchs[p.Arch]:
			deb++
		case rpmArchs[p.Arch]:
			rpm++
		}
	}
	if rpm > deb {
		return RPM
	}
	return Deb
}
