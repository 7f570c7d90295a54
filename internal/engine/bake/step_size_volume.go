package bake

import (
	"context"
	"fmt"
	"runtime"
	"strconv"

	"github.com/aminator-go/aminator/internal/plugin"
)

// sizeVolume finds the base's root snapshot and works out the root
// partition, the volume's size (and whether to grow into it) and the
// architecture.
type sizeVolume struct{}

func (sizeVolume) Name() string { return "" }

func (sizeVolume) Run(ctx context.Context, s *State) error {
	base := s.Base
	if s.BaseRoot = base.Root(); s.BaseRoot == nil || s.BaseRoot.SnapshotID == "" {
		return fmt.Errorf("base image %s has no root snapshot", base.ID)
	}
	if s.Req.Partition == 0 {
		if n, err := strconv.Atoi(base.Tags["root_partition"]); err == nil && n > 0 {
			s.Req.Partition = n
			s.Log.Info("root filesystem on partition, as the base image records", "partition", n)
		}
	}
	snap, err := s.Env.Cloud.Snapshot(ctx, s.BaseRoot.SnapshotID)
	if err != nil {
		return fmt.Errorf("base image %s: %w", base.ID, err)
	}
	s.BaseBytes, s.Size = snap.SizeBytes, snap.SizeBytes
	if s.Req.RootVolumeGiB > 0 {
		want := int64(s.Req.RootVolumeGiB) << 30
		if want < snap.SizeBytes {
			return &UsageError{fmt.Errorf("--root-volume-size %d GiB is smaller than the base image's root volume (%d bytes)", s.Req.RootVolumeGiB, snap.SizeBytes)}
		}
		s.Grow, s.Size = want > snap.SizeBytes, want
	}
	s.Arch = archOf(s.Req, base)
	return nil
}

// archOf is the image's architecture: the one asked for, else the base's,
// else (some APIs, moto, leave it out) this host's.
func archOf(req Request, base *plugin.Image) string {
	if req.Arch != "" {
		return req.Arch
	}
	if base.Architecture != "" {
		return base.Architecture
	}
	return map[string]string{"amd64": "x86_64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]
}
