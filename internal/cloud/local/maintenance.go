package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/snapstore"
)

// GCReport says what gc removed (or, with a dry run, would remove).
type GCReport struct {
	OrphanedVolumes  []string          `json:"orphaned_volumes"`
	PendingSnapshots []string          `json:"pending_snapshots"`
	Store            snapstore.GCStats `json:"store"`
	// Scratch are leftovers of killed jobs, removed when no job runs.
	Scratch []string `json:"scratch"`
}

// GC removes the volumes of bakes that are gone, snapshots whose maker died
// before completing them, and every chunk no snapshot uses.
func (c *Cloud) GC(ctx context.Context, dryRun bool) (*GCReport, error) {
	r := &GCReport{OrphanedVolumes: []string{}, PendingSnapshots: []string{}}
	vs, err := c.Volumes(ctx)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, v := range vs {
		if !v.Orphaned {
			continue
		}
		r.OrphanedVolumes = append(r.OrphanedVolumes, v.ID)
		if !dryRun {
			if err := c.DeleteVolume(ctx, v.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ss, err := c.Snapshots(ctx)
	if err != nil {
		return r, err
	}
	for _, s := range ss {
		if s.State != "pending" {
			continue
		}
		// Take the maker's lock, so the snapshot cannot complete while it is
		// removed, and delete it only if it is still pending.
		lock, err := flock.TryExclusive(c.ownerLock(s.ID))
		if err != nil {
			continue // its maker is alive
		}
		if dryRun {
			lock.Unlock()
			r.PendingSnapshots = append(r.PendingSnapshots, s.ID)
			continue
		}
		res, err := c.db.ExecContext(ctx, `DELETE FROM snapshots WHERE id=? AND state='pending'`, s.ID)
		if n, _ := res.RowsAffected(); err == nil && n == 1 {
			c.db.ExecContext(ctx, `DELETE FROM tags WHERE resource_id=?`, s.ID)
			c.store.Delete(ctx, s.ID)
			r.PendingSnapshots = append(r.PendingSnapshots, s.ID)
		}
		lock.Unlock()
		os.Remove(lock.Path())
	}
	r.Store, err = c.store.GC(ctx, dryRun)
	if err != nil {
		errs = append(errs, err)
	}
	if !c.jobsRunning() {
		r.Scratch = c.scratch()
		if !dryRun {
			for _, p := range r.Scratch {
				os.RemoveAll(p)
			}
		}
	}
	return r, errors.Join(errs...)
}

// jobsRunning reports whether any bake, foundation or boot test holds its
// job lock (the CLI takes LOCKDIR/<job id>.lock for a job's lifetime).
func (c *Cloud) jobsRunning() bool {
	for _, pat := range []string{"bake-*.lock", "foundation-*.lock", "test-*.lock"} {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if flock.Held(l) {
				return true
			}
		}
	}
	return false
}

// scratch lists what killed jobs leave: scratch files, half-restored
// volume files, foundation trees on tmpfs.
func (c *Cloud) scratch() []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, e := range ents {
		out = append(out, filepath.Join(c.dir, "tmp", e.Name()))
	}
	tmps, _ := filepath.Glob(filepath.Join(c.dir, "data", "volumes", ".*.tmp-*"))
	out = append(out, tmps...)
	// Shared by every state directory on the host: only old ones.
	trees, _ := filepath.Glob("/dev/shm/aminator-foundation-*")
	for _, t := range trees {
		if st, err := os.Stat(t); err == nil && time.Since(st.ModTime()) > 6*time.Hour {
			out = append(out, t)
		}
	}
	return out
}

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
		users, _ := c.snapshotUsers(ctx, s.ID)
		for _, im := range users {
			r.BrokenImages[im] = append(r.BrokenImages[im], s.ID)
		}
	}
	return r, nil
}
