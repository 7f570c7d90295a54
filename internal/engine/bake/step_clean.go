package bake

import (
	"context"

	"github.com/aminator-go/aminator/internal/engine/imageclean"
)

// cleanImage removes what the bake or a running system left in the image
// that must be unique per instance or must not ship (imageclean's table:
// SSH host keys, machine-id, logs, temporary files...), once the package,
// the image's scripts and the shell are done and the manifest is read,
// before the volume is unmounted and snapshotted.
type cleanImage struct{}

func (cleanImage) Name() string { return "clean image" }

func (cleanImage) Run(_ context.Context, s *State) error {
	_, err := imageclean.Clean(s.Chroot.Root(), s.Log)
	return err
}
