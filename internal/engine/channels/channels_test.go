package channels

import (
	"context"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
)

// A family's channels are per architecture: releasing its arm64 image
// keeps its x86_64 release, and a second x86_64 release moves only the
// first x86_64 one to previous.
func TestReleaseIsPerArchitecture(t *testing.T) {
	ctx := context.Background()
	c := fakecloud.New()
	base := func(name, arch string) *plugin.Image {
		return c.AddImageArch(name, arch, 1<<30, plugin.Tags{TagFamily: "web", TagRole: RoleBase})
	}
	x1, arm, x2 := base("web-x86-1", "x86_64"), base("web-arm64-1", "arm64"), base("web-x86-2", "x86_64")
	for _, im := range []*plugin.Image{x1, arm, x2} {
		if _, err := Promote(ctx, c, im, Release, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{x1.ID: Previous, arm.ID: Release, x2.ID: Release} {
		im, err := c.Image(ctx, plugin.ImageQuery{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if got := im.Tags[TagChannel]; got != want {
			t.Errorf("%s (%s): channel %q, want %q", im.Name, im.Architecture, got, want)
		}
	}
}
