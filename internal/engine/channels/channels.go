// Package channels moves base images through release channels, as
// Netflix's base images march through candidate -> release every week or
// two: an image carries its family (the -n name or package name it was
// baked as) and at most one channel label (candidate, release, previous)
// in its tags, and a base can be named as FAMILY:LABEL.
package channels

import (
	"context"
	"fmt"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// Tag keys this package reads and writes.
const (
	TagFamily  = "family"
	TagChannel = "channel"
	TagRole    = "role"
)

// Labels.
const (
	Candidate = "candidate"
	Release   = "release"
	Previous  = "previous"
)

// Roles.
const (
	RoleFoundation = "foundation"
	RoleBase       = "base"
	RoleApp        = "app"
)

// Labels lists the labels a base can be resolved by.
var Labels = []string{Candidate, Release, Previous}

func isLabel(s string) bool {
	for _, l := range Labels {
		if s == l {
			return true
		}
	}
	return false
}

// SplitRef splits "family:label" (label one of Labels); other names come
// back whole with an empty label.
func SplitRef(ref string) (family, label string) {
	if i := strings.LastIndexByte(ref, ':'); i > 0 && isLabel(ref[i+1:]) {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// Resolve finds the newest image of family carrying label.
func Resolve(ctx context.Context, c plugin.ImageFinder, family, label string) (*plugin.Image, error) {
	if !isLabel(label) {
		return nil, fmt.Errorf("label %q: use one of %s", label, strings.Join(Labels, ", "))
	}
	ims, err := c.FindImages(ctx, plugin.Tags{TagFamily: family, TagChannel: label})
	if err != nil {
		return nil, fmt.Errorf("resolve %s:%s: %w", family, label, err)
	}
	if len(ims) == 0 {
		return nil, fmt.Errorf("no image of family %q carries the label %q (promote one with `aminate images promote IMAGE --label %s`): %w", family, label, label, plugin.ErrNotFound)
	}
	return ims[0], nil
}

// Labeller is what moving images through channels uses of a cloud: finding
// images by tag and changing their tags.
type Labeller interface {
	plugin.ImageFinder
	plugin.Tagger
}

// Promote gives im the label candidate or release. Promoting to release
// turns the family's current release of im's architecture into previous
// (and drops that architecture's old previous). Only base and foundation images move through channels, and
// labels never move backwards.
func Promote(ctx context.Context, c Labeller, im *plugin.Image, label, lockDir string) ([]string, error) {
	switch label {
	case Candidate, Release:
	case Previous:
		return nil, fmt.Errorf("previous is kept automatically for the last release; promote to candidate or release")
	default:
		return nil, fmt.Errorf("label %q: promote to candidate or release", label)
	}
	role := im.Tags[TagRole]
	if role != RoleBase && role != RoleFoundation {
		if role == "" {
			role = "none"
		}
		return nil, fmt.Errorf("image %s (%s) is not a base image (role %s); only base and foundation images move through channels", im.ID, im.Name, role)
	}
	family := im.Tags[TagFamily]
	if family == "" {
		return nil, fmt.Errorf("image %s has no %s tag, so it belongs to no family", im.ID, TagFamily)
	}
	lock, err := flock.Exclusive(ctx, lockDir+"/channel-"+strings.ReplaceAll(family, "/", "_")+".lock")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	cur := im.Tags[TagChannel]
	switch {
	case cur == label:
		return []string{fmt.Sprintf("%s is already %s", im.ID, label)}, nil
	case label == Candidate && (cur == Release || cur == Previous):
		return nil, fmt.Errorf("image %s is %s; demoting it to candidate is not supported", im.ID, cur)
	}
	var done []string
	if label == Release {
		olds, err := c.FindImages(ctx, plugin.Tags{TagFamily: family, TagChannel: Previous})
		if err != nil {
			return nil, err
		}
		for _, o := range sameArch(olds, im) {
			if err := c.DeleteTags(ctx, o.ID, TagChannel); err != nil {
				return nil, err
			}
			done = append(done, fmt.Sprintf("%s (%s): previous -> none", o.ID, o.Name))
		}
		rels, err := c.FindImages(ctx, plugin.Tags{TagFamily: family, TagChannel: Release})
		if err != nil {
			return nil, err
		}
		for _, r := range sameArch(rels, im) {
			if err := c.CreateTags(ctx, r.ID, plugin.Tags{TagChannel: Previous}); err != nil {
				return nil, err
			}
			done = append(done, fmt.Sprintf("%s (%s): release -> previous", r.ID, r.Name))
		}
	}
	if err := c.CreateTags(ctx, im.ID, plugin.Tags{TagChannel: label}); err != nil {
		return nil, err
	}
	from := cur
	if from == "" {
		from = "none"
	}
	return append(done, fmt.Sprintf("%s (%s): %s -> %s", im.ID, im.Name, from, label)), nil
}

// sameArch keeps the images of im's architecture: a family's channels are
// per architecture, so promoting its arm64 image leaves its x86_64 release
// alone (an image that names none is x86_64, EC2's default).
func sameArch(ims []*plugin.Image, im *plugin.Image) []*plugin.Image {
	arch := func(i *plugin.Image) string {
		if i.Architecture == "" {
			return "x86_64"
		}
		return i.Architecture
	}
	var out []*plugin.Image
	for _, i := range ims {
		if arch(i) == arch(im) {
			out = append(out, i)
		}
	}
	return out
}

// Lineage returns the ancestor ids recorded on an image, oldest first.
func Lineage(im *plugin.Image) []string {
	if im.Tags["lineage"] == "" {
		return nil
	}
	return strings.Split(im.Tags["lineage"], ",")
}

// ChildLineage is the lineage tag for an image baked on base.
func ChildLineage(base *plugin.Image) string {
	return strings.Join(append(Lineage(base), base.ID), ",")
}

// ChildRole is the role of an image baked on base: a bake on a foundation
// makes a base, anything else an app.
func ChildRole(base *plugin.Image) string {
	if base.Tags[TagRole] == RoleFoundation {
		return RoleBase
	}
	return RoleApp
}
