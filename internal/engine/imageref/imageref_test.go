package imageref

import (
	"context"
	"errors"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
)

// images is a cloud of three images, newest first.
type images []*plugin.Image

func (is images) Image(_ context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	for _, im := range is {
		if (q.ID != "" && im.ID == q.ID) || (q.Name != "" && im.Name == q.Name) {
			return im, nil
		}
	}
	return nil, plugin.ErrNotFound
}

func (is images) FindImages(_ context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	var out []*plugin.Image
	for _, im := range is {
		ok := true
		for k, v := range tags {
			ok = ok && im.Tags[k] == v
		}
		if ok {
			out = append(out, im)
		}
	}
	return out, nil
}

const (
	newID = "ami-00000000000000002"
	oldID = "ami-00000000000000001"
)

var cloud = images{
	{ID: newID, Name: "base-2", Tags: plugin.Tags{"family": "base", "channel": "candidate"}},
	{ID: oldID, Name: "base-1", Tags: plugin.Tags{"family": "base", "channel": "release"}},
	{ID: "ami-00000000000000003", Name: "base:weird", Tags: plugin.Tags{}},
}

func TestParseAndResolve(t *testing.T) {
	for _, c := range []struct {
		in   string
		ref  Ref
		want string
	}{
		{newID, Ref{ID: newID}, newID},
		{"base-1", Ref{Name: "base-1"}, oldID},
		{"base:release", Ref{Name: "base", Label: "release"}, oldID},
		{"base:candidate", Ref{Name: "base", Label: "candidate"}, newID},
		{"base:weird", Ref{Name: "base:weird"}, "ami-00000000000000003"},
	} {
		ref := Parse(c.in)
		if ref != c.ref || ref.String() != c.in {
			t.Errorf("Parse(%q) = %+v (%s), want %+v", c.in, ref, ref, c.ref)
		}
		im, err := Resolve(context.Background(), cloud, ref)
		if err != nil || im.ID != c.want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", c.in, im, err, c.want)
		}
	}
}

func TestResolveMissing(t *testing.T) {
	for _, r := range []Ref{{ID: "ami-0000000000000000f"}, {Name: "nope"}, {Name: "base", Label: "previous"}} {
		if _, err := Resolve(context.Background(), cloud, r); !errors.Is(err, plugin.ErrNotFound) {
			t.Errorf("Resolve(%+v): %v, want not found", r, err)
		}
	}
	if _, err := Resolve(context.Background(), cloud, Ref{Name: "base", Label: "stable"}); err == nil {
		t.Error("a label that is not a channel resolved")
	}
}

// With an architecture, a name is a family: its newest image of that
// architecture (with the label, if any), else the image of that name if
// it is of that architecture.
func TestResolveArch(t *testing.T) {
	c := images{
		{ID: "ami-00000000000000014", Name: "web-arm64-2", Architecture: "arm64", Tags: plugin.Tags{"family": "web"}},
		{ID: "ami-00000000000000013", Name: "web-x86-2", Architecture: "x86_64", Tags: plugin.Tags{"family": "web"}},
		{ID: "ami-00000000000000012", Name: "web-arm64-1", Architecture: "arm64", Tags: plugin.Tags{"family": "web", "channel": "release"}},
		{ID: "ami-00000000000000011", Name: "single", Architecture: "arm64", Tags: plugin.Tags{}},
	}
	for _, tc := range []struct {
		ref  Ref
		want string
	}{
		{Ref{Name: "web", Arch: "arm64"}, "ami-00000000000000014"},
		{Ref{Name: "web", Arch: "x86_64"}, "ami-00000000000000013"},
		{Ref{Name: "web", Label: "release", Arch: "arm64"}, "ami-00000000000000012"},
		{Ref{Name: "single", Arch: "arm64"}, "ami-00000000000000011"},
	} {
		im, err := Resolve(context.Background(), c, tc.ref)
		if err != nil || im.ID != tc.want {
			t.Errorf("Resolve(%+v) = %v, %v; want %s", tc.ref, im, err, tc.want)
		}
	}
	for _, r := range []Ref{{Name: "web", Label: "release", Arch: "x86_64"}, {Name: "single", Arch: "x86_64"}, {Name: "web", Arch: "i386"}} {
		if _, err := Resolve(context.Background(), c, r); !errors.Is(err, plugin.ErrNotFound) {
			t.Errorf("Resolve(%+v): %v, want not found", r, err)
		}
	}
}
