package local

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/snapstore"
)

// FsckReport is the store's check plus what it means for the registry.
type FsckReport = plugin.FsckReport

// Fsck verifies every chunk and clone and names the snapshots and images
// a bad or missing chunk breaks. With repair it quarantines bad chunks and
// rebuilds them from the store's verified clones and the volumes made from
// their snapshots; the images it names then are those left broken.
func (c *Cloud) Fsck(ctx context.Context, repair bool) (*FsckReport, error) {
	o := snapstore.FsckOptions{Repair: repair}
	if repair {
		vs, err := c.ListVolumes(ctx)
		if err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		for _, v := range vs {
			if v.SnapshotID != "" {
				o.Sources = append(o.Sources, snapstore.Source{Path: c.VolumePath(v.ID), Snapshot: v.SnapshotID})
			}
		}
	}
	sr, err := c.store.Fsck(ctx, o)
	if err != nil {
		return nil, err
	}
	r := &FsckReport{StoreCheck: sr, MissingData: []string{}, BrokenImages: map[string][]string{}}
	ss, err := c.ListSnapshots(ctx)
	if err != nil {
		return r, err
	}
	for _, s := range ss {
		if s.State != "completed" {
			continue
		}
		broken := len(sr.Broken[s.ID]) > 0
		if _, err := c.store.LoadManifest(s.ID); err != nil {
			r.MissingData = append(r.MissingData, s.ID)
			broken = true
		}
		if !broken {
			continue
		}
		users, err := c.snapshotUsers(ctx, s.ID)
		if err != nil {
			return r, fmt.Errorf("fsck: %w", err)
		}
		for _, im := range users {
			r.BrokenImages[im] = append(r.BrokenImages[im], s.ID)
		}
	}
	return r, nil
}
