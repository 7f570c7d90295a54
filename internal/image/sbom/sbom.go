// Package sbom lists what an image carries, from its own package database,
// and writes that list as an SPDX 2.3 or CycloneDX 1.6 JSON document.
//
// Read takes the image's mounted root directory and reads it only through
// an os.Root, so a symlink planted in the image cannot lead outside it, and
// never runs the image's binaries: dpkg's status file with its updates
// journal applied on top (Debian family), or rpm's SQLite database (RHEL 9,
// Fedora). An image that is neither gets an Inventory with no packages and
// a Note saying so, not an error. SPDX and CycloneDX turn an Inventory and
// a Subject (the image, its disk's SHA-256, the baked package, a creation
// time) into bytes that depend on nothing else: same inputs, same bytes.
package sbom

import (
	"fmt"
	"os"
	"sort"
)

// Kind is the package database an Inventory was read from.
type Kind string

// The package databases Read knows.
const (
	KindDeb  Kind = "deb"
	KindRPM  Kind = "rpm"
	KindNone Kind = "none"
)

// NoAssertion is SPDX's word for "not known", used for a licence the
// package does not declare as a valid SPDX expression.
const NoAssertion = "NOASSERTION"

// Package is one installed package.
type Package struct {
	Name          string
	Version       string // the full version: epoch:upstream-revision (deb), epoch:version-release (rpm)
	Arch          string
	Source        string // the source package (dpkg's Source, rpm's SOURCERPM); the package itself when not named
	SourceVersion string
	License       string // a valid SPDX license expression, or NoAssertion
	PURL          string
}

// Inventory is what Read found in an image.
type Inventory struct {
	Kind     Kind
	Distro   Distro
	Packages []Package // sorted by name, then architecture, then version
	Note     string    // why the list is empty or partial, "" when it is whole
}

// Options tune Read.
type Options struct {
	// Licences are licences already read, by purl: a package whose purl
	// (name, version, architecture, distribution) is here keeps this
	// licence without its copyright file being read again. Reading the
	// copyright files is most of a Debian image's read; a bake's image
	// shares most packages with its base, whose inventory has them.
	Licences map[string]string
}

// Licences are the inventory's licences by purl, for Options.Licences.
func (inv *Inventory) Licences() map[string]string {
	m := make(map[string]string, len(inv.Packages))
	for _, p := range inv.Packages {
		m[p.PURL] = p.License
	}
	return m
}

// Read lists the packages installed in the image whose root directory is
// dir.
func Read(dir string, opt Options) (*Inventory, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open image root: %w", err)
	}
	defer root.Close()
	return ReadRoot(root, opt)
}

// ReadRoot lists the packages installed in the image rooted at root.
func ReadRoot(root *os.Root, opt Options) (*Inventory, error) {
	inv := &Inventory{Distro: readOSRelease(root.FS())}
	var err error
	switch {
	case present(root, dpkgStatus):
		inv.Kind = KindDeb
		inv.Packages, err = readDpkg(root, inv.Distro, opt.Licences)
	case rpmDB(root) != "":
		inv.Kind = KindRPM
		inv.Packages, err = readRPM(root, rpmDB(root), inv.Distro)
	case present(root, rpmBDB):
		inv.Kind = KindRPM
		inv.Note = "the rpm database is in BerkeleyDB form (" + rpmBDB + ", RHEL 8 and older), which is not read: no packages are listed"
	default:
		inv.Kind = KindNone
		inv.Note = "no package database found: the image is neither Debian- nor RPM-based (no " +
			dpkgStatus + ", no " + rpmDBPaths[0] + "), so no packages are listed"
	}
	if err != nil {
		return nil, err
	}
	sortPackages(inv.Packages)
	return inv, nil
}

// present reports whether the image has an entry (of any type) at name.
// It does not follow a final symlink: a status file planted as a symlink
// to the host is present, and reading it through the os.Root then fails.
func present(root *os.Root, name string) bool {
	_, err := root.Lstat(name)
	return err == nil
}

func sortPackages(p []Package) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Name != p[j].Name {
			return p[i].Name < p[j].Name
		}
		if p[i].Arch != p[j].Arch {
			return p[i].Arch < p[j].Arch
		}
		return p[i].Version < p[j].Version
	})
}
