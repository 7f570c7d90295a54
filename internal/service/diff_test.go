package service

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
)

func pkgs(arch string, nv ...string) []plugin.Package {
	var out []plugin.Package
	for i := 0; i+1 < len(nv); i += 2 {
		out = append(out, plugin.Package{Name: nv[i], Version: nv[i+1], Arch: arch})
	}
	return out
}

func TestDiffManifests(t *testing.T) {
	a := pkgs("amd64", "libc6", "2.36-9", "curl", "7.88-1", "gone", "1.0", "same", "1")
	b := pkgs("amd64", "libc6", "2.36-10", "curl", "7.87-1", "new", "0.1", "same", "1")
	d := DiffManifests(a, b, pkgmgr.Deb)
	want := ManifestDiff{
		Added:      []Change{{Name: "new", Arch: "amd64", To: "0.1"}},
		Removed:    []Change{{Name: "gone", Arch: "amd64", From: "1.0"}},
		Upgraded:   []Change{{Name: "libc6", Arch: "amd64", From: "2.36-9", To: "2.36-10"}},
		Downgraded: []Change{{Name: "curl", Arch: "amd64", From: "7.88-1", To: "7.87-1"}},
		Format:     pkgmgr.Deb,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff %+v\nwant %+v", d, want)
	}
	if e := DiffManifests(nil, nil, pkgmgr.RPM); e.Added == nil || e.Removed == nil || e.Upgraded == nil || e.Downgraded == nil {
		t.Error("empty lists must be empty, not null, in JSON")
	}
}

// An image's versions order as its package manager orders them: dpkg
// takes 2.0^git1 for newer than 2.0.1 and 1_0 for newer than 1.0, rpm
// takes the first for older and the second for the same version. The
// distribution tag says which, else the manifests' architectures do.
func TestDiffOrdersByPackageFormat(t *testing.T) {
	ctx := context.Background()
	// Architectures that would say rpm: the distribution tag wins.
	before, after := pkgs("x86_64", "tool", "2.0.1-1", "lib", "1_0"), pkgs("x86_64", "tool", "2.0^git1-1", "lib", "1.0")
	f := fakecloud.New()
	found := addImage(t, f, "found", plugin.Tags{"distribution": "debian"})
	addImage(t, f, "deb1", plugin.Tags{"lineage": found.ID}, before...)
	addImage(t, f, "deb2", plugin.Tags{"lineage": found.ID}, after...)
	addImage(t, f, "rpm1", plugin.Tags{}, before...)
	addImage(t, f, "rpm2", plugin.Tags{}, after...)
	addImage(t, f, "fedora", plugin.Tags{"distribution": "fedora"}, after...)
	d, err := Diff(ctx, f, "deb1", "deb2")
	if err != nil || d.Format != pkgmgr.Deb || len(d.Upgraded) != 1 || len(d.Downgraded) != 1 {
		t.Errorf("deb diff %+v %v", d, err)
	}
	d, err = Diff(ctx, f, "rpm1", "rpm2")
	if err != nil || d.Format != pkgmgr.RPM || len(d.Upgraded) != 0 || len(d.Downgraded) != 1 || d.Downgraded[0].Name != "tool" {
		t.Errorf("rpm diff %+v %v", d, err)
	}
	if _, err := Diff(ctx, f, "deb1", "fedora"); err == nil || !strings.Contains(err.Error(), "do not compare") {
		t.Errorf("a Debian image against a Fedora one: %v", err)
	}
	if _, err := Diff(ctx, f, "found", "deb1"); err == nil || !strings.Contains(err.Error(), "no package manifest") {
		t.Errorf("an image without a manifest: %v", err)
	}
}

// The distribution tag of an image or of its nearest ancestor names its format.
func TestDistributionFormat(t *testing.T) {
	ctx := context.Background()
	f := fakecloud.New()
	rh := addImage(t, f, "rh", plugin.Tags{"distribution": "Rocky"})
	deb := addImage(t, f, "deb", plugin.Tags{"distribution": "debian", "lineage": rh.ID})
	image := func(name string, tags plugin.Tags) *plugin.Image { return &plugin.Image{Name: name, Tags: tags} }
	for _, c := range []struct {
		im   *plugin.Image
		want pkgmgr.Format
	}{
		{rh, pkgmgr.RPM},
		{deb, pkgmgr.Deb},
		{image("child", plugin.Tags{"lineage": rh.ID + "," + deb.ID}), pkgmgr.Deb},
		{image("grandchild", plugin.Tags{"lineage": rh.ID + ",ami-09999999"}), pkgmgr.RPM},
		{image("plain", plugin.Tags{}), ""},
	} {
		if got := DistributionFormat(ctx, f, c.im); got != c.want {
			t.Errorf("%s: %q, want %q", c.im.Name, got, c.want)
		}
	}
}

// An RPM manifest is diffed in rpm's order, not dpkg's: a caret snapshot
// (2.0^git1) is older than 2.0.1 for rpm, newer for dpkg.
func TestDiffManifestsOrder(t *testing.T) {
	a := []plugin.Package{{Name: "app", Version: "2.0.1-1", Arch: "x86_64"}, {Name: "old", Version: "1-1", Arch: "noarch"}}
	b := []plugin.Package{{Name: "app", Version: "2.0^git1-1", Arch: "x86_64"}, {Name: "new", Version: "3.1-7", Arch: "noarch"}}
	d := DiffManifests(a, b, pkgmgr.RPM)
	if len(d.Downgraded) != 1 || d.Downgraded[0].Name != "app" || len(d.Upgraded) != 0 ||
		len(d.Added) != 1 || d.Added[0].Name != "new" || len(d.Removed) != 1 || d.Removed[0].Name != "old" {
		t.Errorf("rpm order: %+v", d)
	}
	if d := DiffManifests(a, b, pkgmgr.Deb); len(d.Upgraded) != 1 {
		t.Errorf("dpkg order: %+v", d)
	}
}
