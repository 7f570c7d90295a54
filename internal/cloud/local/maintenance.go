package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/snapstore"
)

// GCReport says what gc removed (or, with a dry run, would remove).
type GCReport struct {
	OrphanedVolumes  []string          `json:"orphaned_volumes"`
	PendingSnapshots []string          `json:"pending_snapshots"`
	Store            snapstore.GCStats `json:"store"`
	// Scratch are leftovers of killed jobs, removed when no job runs.
	Scratch []string `json:"scratch"`
	// Stale are the job locks and mount points killed jobs left.
	Stale []string `json:"stale"`
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
		pending, err := c.deleteRow(ctx, "snapshots", s.ID, "state='pending'")
		if err != nil {
			errs = append(errs, fmt.Errorf("gc: %w", err))
		} else if pending {
			if err := c.store.Delete(ctx, s.ID); err != nil {
				errs = append(errs, fmt.Errorf("gc: %w", err))
			}
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
	r.Stale = c.stale(ctx, dryRun)
	return r, errors.Join(errs...)
}

// jobLocks are the locks a job (bake, foundation, boot test) holds for its
// lifetime (the CLI takes LOCKDIR/<job id>.lock).
var jobLocks = []string{"bake-*.lock", "foundation-*.lock", "test-*.lock"}

// stale removes (unless dryRun) and lists what a job killed with SIGKILL
// leaves outside tmp/: its job lock, taken here before it is removed (and
// only once older than a few seconds, so a job that has just created its
// lock file takes it), and the empty mount point of a volume that is gone.
// A mount point is removed only if empty and not mounted (rmdir).
func (c *Cloud) stale(ctx context.Context, dryRun bool) []string {
	out := []string{}
	for _, pat := range jobLocks {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if st, err := os.Stat(l); err != nil || time.Since(st.ModTime()) < 10*time.Second {
				continue
			}
			lock, err := flock.TryExclusive(l)
			if err != nil {
				continue // its job runs
			}
			if dryRun || os.Remove(l) == nil {
				out = append(out, l)
			}
			lock.Unlock()
		}
	}
	mnt := filepath.Join(c.dir, "mnt")
	ents, _ := os.ReadDir(mnt)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := c.Volume(ctx, e.Name()); !errors.Is(err, plugin.ErrNotFound) {
			continue // its volume is still there (a running or preserved bake's)
		}
		if p := filepath.Join(mnt, e.Name()); dryRun || os.Remove(p) == nil {
			out = append(out, p)
		}
	}
	return out
}

// jobsRunning reports whether any bake, foundation or boot test holds its
// job lock (the CLI takes LOCKDIR/<job id>.lock for a job's lifetime).
func (c *Cloud) jobsRunning() bool {
	for _, pat := range jobLocks {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if flock.Held(l) {
				return true
			}
		}
	}
	return false
}

// scratch lists what killed jobs leave: scratch files (not those a live
// process holds a flock on, as a bake's parent does its refill list),
// half-restored volume files, foundation trees on tmpfs.
func (c *Cloud) scratch() []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, e := range ents {
		p := filepath.Join(c.dir, "tmp", e.Name())
		if e.Type().IsRegular() && flock.Held(p) {
			continue
		}
		out = append(out, p)
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
