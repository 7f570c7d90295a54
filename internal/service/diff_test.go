package service

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
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
	d := DiffManifests(a, b, Deb)
	want := ManifestDiff{
		Added:      []Change{{Name: "new", Arch: "amd64", To: "0.1"}},
		Removed:    []Change{{Name: "gone", Arch: "amd64", From: "1.0"}},
		Upgraded:   []Change{{Name: "libc6", Arch: "amd64", From: "2.36-9", To: "2.36-10"}},
		Downgraded: []Change{{Name: "curl", Arch: "amd64", From: "7.88-1", To: "7.87-1"}},
		Format:     Deb,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff %+v\nwant %+v", d, want)
	}
	if e := DiffManifests(nil, nil, RPM); e.Added == nil || e.Removed == nil || e.Upgraded == nil || e.Downgraded == nil {
		t.Error("empty lists must be empty, not null, in JSON")
	}
}

// An RPM image's versions order as rpm orders them: where dpkg sees a
// change (1.0 to 1.0-1 up, 1_0 to 1.0 down), rpm sees the same version.
func TestDiffOrdersByPackageFormat(t *testing.T) {
	ctx := context.Background()
	found := image(1, "found", plugin.Tags{"distribution": "debian"})
	deb1 := image(2, "deb1", plugin.Tags{"lineage": found.ID})
	deb2 := image(3, "deb2", plugin.Tags{"lineage": found.ID})
	rpm1 := image(4, "rpm1", plugin.Tags{})
	rpm2 := image(5, "rpm2", plugin.Tags{})
	f := &fakeCloud{images: []*plugin.Image{found, deb1, deb2, rpm1, rpm2}, manifests: map[string][]plugin.Package{
		// Architectures that would say rpm: the distribution tag wins.
		deb1.ID: pkgs("x86_64", "tool", "1.0", "lib", "1_0"),
		deb2.ID: pkgs("x86_64", "tool", "1.0-1", "lib", "1.0"),
		rpm1.ID: append(pkgs("x86_64", "tool", "1.0", "lib", "1_0"), pkgs("noarch", "doc", "2-1")...),
		rpm2.ID: append(pkgs("x86_64", "tool", "1.0-1", "lib", "1.0"), pkgs("noarch", "doc", "2-2")...),
	}}
	d, err := Diff(ctx, f, "deb1", "deb2")
	if err != nil || d.Format != Deb || len(d.Upgraded) != 1 || len(d.Downgraded) != 1 {
		t.Errorf("deb diff %+v %v", d, err)
	}
	d, err = Diff(ctx, f, "rpm1", "rpm2")
	if err != nil || d.Format != RPM || len(d.Upgraded) != 1 || d.Upgraded[0].Name != "doc" {
		t.Errorf("rpm diff %+v %v", d, err)
	}
	if _, err := Diff(ctx, f, "deb1", "rpm2"); err == nil || !strings.Contains(err.Error(), "do not compare") {
		t.Errorf("a deb image against an rpm one: %v", err)
	}
	if _, err := Diff(ctx, f, "found", "deb1"); err == nil || !strings.Contains(err.Error(), "no package manifest") {
		t.Errorf("an image without a manifest: %v", err)
	}
}

func TestFormatOf(t *testing.T) {
	ctx := context.Background()
	rh := image(1, "rh", plugin.Tags{"distribution": "Rocky"})
	f := &fakeCloud{images: []*plugin.Image{rh}}
	for _, c := range []struct {
		im       *plugin.Image
		manifest []plugin.Package
		want     Format
	}{
		{rh, pkgs("amd64", "a", "1"), RPM},
		{image(2, "child", plugin.Tags{"lineage": rh.ID}), nil, RPM},
		{image(3, "orphan", plugin.Tags{"lineage": "ami-00000000000000009"}), pkgs("all", "a", "1", "b", "1"), Deb},
		{image(4, "plain", plugin.Tags{}), pkgs("noarch", "a", "1"), RPM},
		{image(5, "unknown", plugin.Tags{}), pkgs("s390x", "a", "1"), ""},
	} {
		if got := FormatOf(ctx, f, c.im, c.manifest); got != c.want {
			t.Errorf("%s: %q, want %q", c.im.Name, got, c.want)
		}
	}
}
