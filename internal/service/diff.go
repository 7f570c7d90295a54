package service

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
)

// distributions maps a distribution tag to its package format.
var distributions = map[string]pkgmgr.Format{
	"debian": pkgmgr.Deb, "ubuntu": pkgmgr.Deb, "devuan": pkgmgr.Deb, "raspbian": pkgmgr.Deb,
	"redhat": pkgmgr.RPM, "rhel": pkgmgr.RPM, "centos": pkgmgr.RPM, "fedora": pkgmgr.RPM, "rocky": pkgmgr.RPM,
	"almalinux": pkgmgr.RPM, "amzn": pkgmgr.RPM, "amazon": pkgmgr.RPM, "oracle": pkgmgr.RPM, "ol": pkgmgr.RPM,
	"opensuse": pkgmgr.RPM, "sles": pkgmgr.RPM, "suse": pkgmgr.RPM,
}

// DistributionFormat is the package format an image's distribution tag
// names — its own, else its nearest ancestor's (foundations carry it) —
// or "" when none does.
func DistributionFormat(ctx context.Context, c ImageGetter, im *plugin.Image) pkgmgr.Format {
	if f, ok := distribution(im); ok {
		return f
	}
	ancestors := channels.Lineage(im)
	for i := len(ancestors) - 1; i >= 0; i-- {
		if a, err := c.Image(ctx, plugin.ImageQuery{ID: ancestors[i]}); err == nil {
			if f, ok := distribution(a); ok {
				return f
			}
		}
	}
	return ""
}

func distribution(im *plugin.Image) (pkgmgr.Format, bool) {
	f, ok := distributions[strings.ToLower(im.Tags["distribution"])]
	return f, ok
}

// Change is one package of a manifest diff.
type Change struct {
	Name string `json:"name"`
	Arch string `json:"arch"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// ManifestDiff is what changed from one image's packages to another's,
// each list sorted by name.
type ManifestDiff struct {
	Added      []Change `json:"added"`
	Removed    []Change `json:"removed"`
	Upgraded   []Change `json:"upgraded"`
	Downgraded []Change `json:"downgraded"`
	// Format is the package format whose version order was used.
	Format pkgmgr.Format `json:"-"`
}

// DiffManifests compares manifest a with b, package by name and
// architecture, ordering versions as format does.
func DiffManifests(a, b []plugin.Package, format pkgmgr.Format) ManifestDiff {
	key := func(p plugin.Package) string { return p.Name + ":" + p.Arch }
	am, bm := map[string]plugin.Package{}, map[string]plugin.Package{}
	for _, p := range a {
		am[key(p)] = p
	}
	for _, p := range b {
		bm[key(p)] = p
	}
	d := ManifestDiff{Added: []Change{}, Removed: []Change{}, Upgraded: []Change{}, Downgraded: []Change{}, Format: format}
	for k, p := range bm {
		q, ok := am[k]
		switch {
		case !ok:
			d.Added = append(d.Added, Change{Name: p.Name, Arch: p.Arch, To: p.Version})
		case format.Compare(q.Version, p.Version) < 0:
			d.Upgraded = append(d.Upgraded, Change{Name: p.Name, Arch: p.Arch, From: q.Version, To: p.Version})
		case format.Compare(q.Version, p.Version) > 0:
			d.Downgraded = append(d.Downgraded, Change{Name: p.Name, Arch: p.Arch, From: q.Version, To: p.Version})
		}
	}
	for k, q := range am {
		if _, ok := bm[k]; !ok {
			d.Removed = append(d.Removed, Change{Name: q.Name, Arch: q.Arch, From: q.Version})
		}
	}
	for _, l := range [][]Change{d.Added, d.Removed, d.Upgraded, d.Downgraded} {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return d
}

// ManifestSource is what a diff needs of a cloud: images and the package
// manifests it keeps for them.
type ManifestSource interface {
	imageref.Finder
	Manifest(ctx context.Context, imageID string) ([]plugin.Package, error)
}

// Diff compares the packages of the images refA and refB name (by id,
// name or FAMILY:LABEL) in the version order of their package format:
// the one the distribution tags of the images (or their lineages) name,
// else the one their manifests tell (pkgmgr.FormatOf). Images whose
// distributions have different formats do not compare.
func Diff(ctx context.Context, c ManifestSource, refA, refB string) (ManifestDiff, error) {
	var ms [2][]plugin.Package
	var fs [2]pkgmgr.Format
	var ids [2]string
	for i, ref := range []string{refA, refB} {
		im, err := Find(ctx, c, ref)
		if err != nil {
			return ManifestDiff{}, err
		}
		if ms[i], err = c.Manifest(ctx, im.ID); err != nil {
			return ManifestDiff{}, err
		}
		if len(ms[i]) == 0 {
			return ManifestDiff{}, fmt.Errorf("image %s has no package manifest", im.ID)
		}
		fs[i], ids[i] = DistributionFormat(ctx, c, im), im.ID
	}
	format := fs[0]
	switch {
	case fs[0] != "" && fs[1] != "" && fs[0] != fs[1]:
		return ManifestDiff{}, fmt.Errorf("image %s holds %s packages and image %s %s packages: their versions do not compare", ids[0], fs[0], ids[1], fs[1])
	case format == "":
		format = fs[1]
	}
	if format == "" { // the manifests say which package manager listed them
		format = pkgmgr.FormatOf(append(append([]plugin.Package(nil), ms[0]...), ms[1]...))
	}
	return DiffManifests(ms[0], ms[1], format), nil
}
