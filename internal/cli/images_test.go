package cli

import (
	"testing"

	"github.com/aminator-go/aminator/internal/pkgmgr"
	"github.com/aminator-go/aminator/internal/plugin"
)

// An RPM image's manifest is diffed in rpm's order, not dpkg's: a caret
// snapshot (2.0^git1) is older than 2.0.1 for rpm, newer for dpkg.
func TestDiffManifestsOrder(t *testing.T) {
	a := []plugin.Package{{Name: "app", Version: "2.0.1-1", Arch: "x86_64"}, {Name: "old", Version: "1-1", Arch: "noarch"}}
	b := []plugin.Package{{Name: "app", Version: "2.0^git1-1", Arch: "x86_64"}, {Name: "new", Version: "3.1-7", Arch: "noarch"}}
	format := pkgmgr.FormatOf(append(append([]plugin.Package(nil), a...), b...))
	if format != pkgmgr.RPM {
		t.Fatalf("format %s", format)
	}
	d := diffManifests(a, b, format.Compare)
	if len(d.Downgraded) != 1 || d.Downgraded[0].Name != "app" || len(d.Upgraded) != 0 ||
		len(d.Added) != 1 || d.Added[0].Name != "new" || len(d.Removed) != 1 || d.Removed[0].Name != "old" {
		t.Errorf("rpm order: %+v", d)
	}
	if d := diffManifests(a, b, pkgmgr.Deb.Compare); len(d.Upgraded) != 1 {
		t.Errorf("dpkg order: %+v", d)
	}
}
