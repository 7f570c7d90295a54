package bake

import "context"

// unmount undoes the chroot and unmounts the volume before the snapshot;
// a failure leaves the undo for the final cleanup to try again.
type unmount struct{}

func (unmount) Name() string { return "unmount" }

func (unmount) Run(ctx context.Context, s *State) error {
	return s.Unmount.Now(ctx)
}
