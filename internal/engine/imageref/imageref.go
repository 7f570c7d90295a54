// Package imageref names images the three ways a user can — by id
// (ami-...), by exact name, or as FAMILY:LABEL, the newest image of a
// family carrying a channel label — and finds the image one names. The
// bake's base, the images commands and the bakery's requests all resolve
// through Resolve, so they agree on what a name means.
package imageref

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

// Ref names one image: by ID, else the newest image of family Name with
// channel Label, else by exact Name. With Arch (and no ID), Name is a
// family: the newest image of that family (with Label, if given) of that
// architecture; an image named exactly Name of that architecture when the
// family has none.
type Ref struct {
	ID    string
	Name  string
	Label string
	Arch  string
}

// Parse reads what a user typed: an image id, FAMILY:LABEL (a label of
// channels.Labels), or else a name.
func Parse(s string) Ref {
	if ids.Valid("ami", s) {
		return Ref{ID: s}
	}
	if family, label := channels.SplitRef(s); label != "" {
		return Ref{Name: family, Label: label}
	}
	return Ref{Name: s}
}

// String is the reference as a user would type it.
func (r Ref) String() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Label != "":
		return r.Name + ":" + r.Label
	}
	return r.Name
}

// Finder is what resolving needs of a cloud: its images.
type Finder = plugin.ImageFinder

// Resolve finds the image r names. A missing image wraps plugin.ErrNotFound.
func Resolve(ctx context.Context, c Finder, r Ref) (*plugin.Image, error) {
	switch {
	case r.ID != "":
		return c.Image(ctx, plugin.ImageQuery{ID: r.ID})
	case r.Arch != "":
		return resolveArch(ctx, c, r)
	case r.Label != "":
		return channels.Resolve(ctx, c, r.Name, r.Label)
	}
	return c.Image(ctx, plugin.ImageQuery{Name: r.Name})
}

// resolveArch finds the newest image of family r.Name (with label r.Label)
// of architecture r.Arch, else (with no label) the image named r.Name if
// it is of that architecture.
func resolveArch(ctx context.Context, c Finder, r Ref) (*plugin.Image, error) {
	want := plugin.Tags{channels.TagFamily: r.Name}
	if r.Label != "" {
		want[channels.TagChannel] = r.Label
	}
	ims, err := c.FindImages(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("resolve %s for %s: %w", r.String(), r.Arch, err)
	}
	for _, im := range ims { // newest first
		if im.Architecture == r.Arch {
			return im, nil
		}
	}
	if r.Label == "" {
		im, err := c.Image(ctx, plugin.ImageQuery{Name: r.Name})
		if err != nil && !errors.Is(err, plugin.ErrNotFound) {
			return nil, err
		}
		if err == nil && im.Architecture == r.Arch {
			return im, nil
		}
	}
	return nil, fmt.Errorf("no %s image of family %q: %w", r.Arch, r.String(), plugin.ErrNotFound)
}
