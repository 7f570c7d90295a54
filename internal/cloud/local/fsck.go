package local

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/snapstore"
)

// FsckReport is the store's check plus what it means for the registry.
type FsckReport struct {
	*snapstore.FsckReport
	// MissingData are completed snapshots the store has no manifest for.
	MissingData []string `json:"missing_data"`
	// BrokenImages maps an image to its broken snapshots.
	BrokenImages map[string][]string `json:"broken_images"`
}

// OK reports whether nothing is wrong.
func (r *FsckReport) OK() bool {
	return len(r.Bad) == 0 && len(r.Broken) == 0 && len(r.MissingData) == 0
}

// Fsck verifies every chunk and names the snapshots and images a bad or
// missing chunk breaks.
func (c *Cloud) Fsck(ctx context.Context) (*FsckReport, error) {
	sr, err := c.store.Fsck(ctx)
	if err != nil {
		return nil, err
	}
	r := &FsckReport{FsckReport: sr, MissingData: []string{}, BrokenImages: map[string][]string{}}
	ss, err := c.Snapshots(ctx)
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
