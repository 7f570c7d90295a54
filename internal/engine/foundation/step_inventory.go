package foundation

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/sbom"
)

// inventory lists the configured tree's packages for the image's SBOM,
// from its dpkg database, before the tree goes into the filesystem.
type inventory struct{ b *builder }

func (inventory) Name() string { return "inventory" }

func (st inventory) Run(ctx context.Context, s *bake.State) error {
	inv, err := sbom.Read(st.b.tree, sbom.Options{})
	if err != nil {
		return fmt.Errorf("read the foundation's packages for its SBOM: %w", err)
	}
	s.Inventory = inv
	return nil
}

// settings are the foundation's resolved inputs, as its provenance names
// them: with the mirror's package versions (the SBOM lists them), what
// makes the tree.
func (b *builder) settings(*bake.State) map[string]any {
	o := b.o
	m := map[string]any{
		"release": o.Release, "mirror": o.Mirror, "arch": o.Arch, "profile": o.Profile, "layout": o.Layout,
		"fs": o.FS, "size": o.SizeGiB, "kernel": o.Kernel, "name": b.name,
	}
	if len(o.Include) > 0 {
		inc := make([]any, len(o.Include))
		for i, p := range o.Include {
			inc[i] = p
		}
		m["include"] = inc
	}
	return m
}
