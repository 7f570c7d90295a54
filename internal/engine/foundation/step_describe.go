package foundation

import (
	"context"
	"fmt"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
)

// describe works out the foundation image to register and its snapshot's
// tags (tags).
type describe struct{ b *builder }

func (describe) Name() string { return "" }

func (st describe) Run(_ context.Context, s *bake.State) error {
	b, o := st.b, st.b.o
	kernel := b.kernel
	if kernel == "" {
		kernel = "none"
	}
	image, snapshot := tags(o, kernel, len(b.pkgs), time.Now())
	s.SnapshotTags, s.VolumeType = snapshot, "local"
	s.NewImage = plugin.ImageRequest{
		Name:         b.name,
		Description:  fmt.Sprintf("foundation: Debian %s %s (%s, %s, %s, kernel %s)", o.Release, o.Arch, o.Profile, o.Layout, o.FS, kernel),
		Architecture: o.Arch, VirtualizationType: "hvm", Tags: image, Packages: b.pkgs, BootMode: bootMode(o.Layout),
	}
	return nil
}
