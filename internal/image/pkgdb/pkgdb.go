// Package pkgdb reads an image's list of installed packages in the forms
// the package managers print it, so that the provisioners (inside a
// chroot) and the foundation builder (on a tree from the host) share one
// format and one parser instead of one importing the other.
package pkgdb

import (
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// DpkgQueryFormat is the dpkg-query -f format ParseDpkgQuery reads: status
// abbreviation, name, version and architecture, tab-separated.
const DpkgQueryFormat = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"

// ParseDpkgQuery reads dpkg-query lines in DpkgQueryFormat, keeping the
// installed packages (status "ii").
func ParseDpkgQuery(out []byte) []plugin.Package {
	var pkgs []plugin.Package
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || strings.TrimSpace(f[0]) != "ii" {
			continue
		}
		pkgs = append(pkgs, plugin.Package{Name: f[1], Version: f[2], Arch: f[3]})
	}
	return pkgs
}
