// Package imageref names images the three ways a user can — by id
// (ami-...), by exact name, or as FAMILY:LABEL, the newest image of a
// family carrying a channel label — and finds the image one names. The
// bake's base, the images commands and the bakery's requests all resolve
// through Resolve, so they agree on what a name means.
package imageref

import (
	"context"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

// Ref names one image: by ID, else the newest image of family Name with
// channel Label, else by exact Name.
type Ref struct {
	ID    string
	Name  string
	Label string
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
	case r.Label != "":
		return channels.Resolve(ctx, c, r.Name, r.Label)
	}
	return c.Image(ctx, plugin.ImageQuery{Name: r.Name})
}
