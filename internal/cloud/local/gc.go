package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/gcreport"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/snapstore"
)

// gcKinds are the kinds of items the local cloud's gc removes, in order.
var gcKinds = []string{gcreport.OrphanedVolume, gcreport.PendingSnapshot,
	gcreport.Chunk, gcreport.Temporary, gcreport.Clone, gcreport.Scratch, gcreport.Stale}

// GCPlan is what the local cloud's gc would remove: the volumes of bakes
// that are gone, snapshots whose maker died before completing them, every
// chunk no snapshot uses (Store), what killed jobs left in tmp/ (when no
// job runs) and their job locks and empty mount points.
type GCPlan struct {
	c *Cloud
	// Items are the planned items but the store's, in the order they are
	// removed: volumes, snapshots, then (after the store's) scratch and
	// stale job files.
	Items []gcreport.Item
	// Store is the snapshot store's plan, made as if the planned
	// snapshots were deleted; nil when the store could not be planned
	// (PlanGC returned why with the plan: the rest can still be done).
	Store *snapstore.GCPlan
}

// PlanGC lists what gc would remove, and why; nothing is removed. When
// only the store cannot be planned (a manifest it cannot read), it returns
// the plan without the store's part, and the error.
func (c *Cloud) PlanGC(ctx context.Context) (*GCPlan, error) {
	p := &GCPlan{c: c}
	vs, err := c.Volumes(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	gone := map[string]bool{}
	for _, v := range vs {
		if v.Orphaned {
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.OrphanedVolume, ID: v.ID, Reason: "its bake is gone"})
			gone[v.ID] = true
		}
	}
	ss, err := c.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	var deleting []string
	for _, s := range ss {
		if s.State == "pending" && !flock.Held(c.ownerLock(s.ID)) {
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.PendingSnapshot, ID: s.ID, Reason: "its maker died before completing it"})
			deleting = append(deleting, s.ID)
		}
	}
	var storeErr error
	if p.Store, storeErr = c.store.PlanGC(ctx, deleting...); storeErr != nil {
		storeErr = fmt.Errorf("plan gc: %w", storeErr)
	}
	if !c.jobsRunning() {
		for _, s := range c.scratch() {
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.Scratch, ID: s, Reason: "left by a killed job"})
		}
	}
	p.Items = append(p.Items, c.planStale(ctx, gone)...)
	return p, storeErr
}

// Planned reports the plan as a dry run.
func (p *GCPlan) Planned() *gcreport.Report {
	r := gcreport.New("local", true, gcKinds...)
	r.Removed = append(r.Removed, p.Items...)
	if p.Store != nil {
		r.Merge(p.Store.Planned())
	}
	return r
}

// Execute removes the planned items in order, each re-checked first: a
// volume a bake took since is kept, a snapshot completed since or whose
// maker runs is kept, scratch is kept while a job runs, a job lock a job
// holds and a mount point whose volume is back are kept. Each kept item
// is reported as skipped, with why.
func (p *GCPlan) Execute(ctx context.Context) (*gcreport.Report, error) {
	c := p.c
	r := gcreport.New("local", false, gcKinds...)
	var errs []error
	running := c.jobsRunning()
	storeDone := false
	for _, it := range p.Items {
		if err := ctx.Err(); err != nil {
			return r, errors.Join(append(errs, err)...)
		}
		if !storeDone && it.Kind != gcreport.OrphanedVolume && it.Kind != gcreport.PendingSnapshot {
			errs = append(errs, p.executeStore(ctx, r)...)
			storeDone = true
			running = c.jobsRunning()
		}
		why, err := c.removeItem(ctx, it, running)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("gc: %w", err))
		case why != "":
			r.Skip(it, why)
		default:
			c.log.Debug("gc removed", "kind", it.Kind, "id", it.ID, "reason", it.Reason)
			r.Remove(it)
		}
	}
	if !storeDone {
		errs = append(errs, p.executeStore(ctx, r)...)
	}
	return r, errors.Join(errs...)
}

func (p *GCPlan) executeStore(ctx context.Context, r *gcreport.Report) []error {
	if p.Store == nil {
		return nil
	}
	st, err := p.Store.Execute(ctx)
	r.Merge(st)
	if err != nil {
		return []error{err}
	}
	return nil
}

// removeItem re-checks a planned item and removes it; it returns why it
// did not (the item changed since it was planned) or an error.
func (c *Cloud) removeItem(ctx context.Context, it gcreport.Item, jobsRunning bool) (skipped string, err error) {
	switch it.Kind {
	case gcreport.OrphanedVolume:
		v, err := c.Volume(ctx, it.ID)
		if errors.Is(err, plugin.ErrNotFound) {
			return "gone", nil
		}
		if err != nil {
			return "", err
		}
		if !v.Orphaned {
			return "a bake took it since it was planned", nil
		}
		return "", c.DeleteVolume(ctx, it.ID)
	case gcreport.PendingSnapshot:
		return c.removePending(ctx, it.ID)
	case gcreport.Scratch:
		if jobsRunning {
			return "a job runs", nil
		}
		if st, err := os.Lstat(it.ID); err != nil {
			return "gone", nil
		} else if st.Mode().IsRegular() && flock.Held(it.ID) {
			return "a live process holds it", nil
		}
		if err := os.RemoveAll(it.ID); err != nil {
			return err.Error(), nil
		}
		return "", nil
	case gcreport.Stale:
		return c.removeStale(ctx, it.ID)
	}
	return "", fmt.Errorf("%s %s: not a kind the local cloud's gc removes", it.Kind, it.ID)
}

// removePending deletes a snapshot whose maker died, under the maker's
// lock (so it cannot complete meanwhile) and only if still pending.
func (c *Cloud) removePending(ctx context.Context, id string) (skipped string, err error) {
	lock, err := flock.TryExclusive(c.ownerLock(id))
	if err != nil {
		return "its maker is alive", nil
	}
	defer os.Remove(lock.Path())
	defer lock.Unlock()
	pending, err := c.deleteRow(ctx, "snapshots", id, "state='pending'")
	if err != nil {
		return "", err
	}
	if !pending {
		return "completed or gone since it was planned", nil
	}
	if err := c.store.Delete(ctx, id); err != nil {
		return "", err
	}
	return "", nil
}

// jobLocks are the locks a job (bake, foundation, boot test) holds for its
// lifetime (the CLI takes LOCKDIR/<job id>.lock), and an S3 bundle of a
// local image (its disk and parts are in tmp/) while it is made and sent.
var jobLocks = []string{"bake-*.lock", "foundation-*.lock", "test-*.lock", "bundle-*.lock"}

// planStale lists what a job killed with SIGKILL leaves outside tmp/: its
// job lock, once older than a few seconds (a job that has just created its
// lock file takes it) and free, and the empty mount point of a volume that
// is gone or in gone (removed by this gc first).
func (c *Cloud) planStale(ctx context.Context, gone map[string]bool) []gcreport.Item {
	var out []gcreport.Item
	for _, pat := range jobLocks {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if st, err := os.Stat(l); err != nil || time.Since(st.ModTime()) < 10*time.Second || flock.Held(l) {
				continue
			}
			out = append(out, gcreport.Item{Kind: gcreport.Stale, ID: l, Reason: "the lock of a job that is gone"})
		}
	}
	mnt := filepath.Join(c.dir, "mnt")
	ents, _ := os.ReadDir(mnt)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(mnt, e.Name())
		if in, err := os.ReadDir(p); err != nil || len(in) > 0 {
			continue // not an empty mount point: in use, or mounted
		}
		if _, err := c.Volume(ctx, e.Name()); gone[e.Name()] || errors.Is(err, plugin.ErrNotFound) {
			out = append(out, gcreport.Item{Kind: gcreport.Stale, ID: p, Reason: "the mount point of a volume that is gone"})
		}
	}
	return out
}

// removeStale removes a stale job lock, taken first (its job may have
// started again), or an empty mount point (rmdir) whose volume is gone.
func (c *Cloud) removeStale(ctx context.Context, p string) (skipped string, err error) {
	if filepath.Dir(p) == filepath.Join(c.dir, "mnt") {
		if _, err := c.Volume(ctx, filepath.Base(p)); !errors.Is(err, plugin.ErrNotFound) {
			return "its volume is there", nil
		}
		if err := os.Remove(p); err != nil {
			return err.Error(), nil // not empty, or mounted
		}
		return "", nil
	}
	lock, err := flock.TryExclusive(p)
	if err != nil {
		return "its job runs", nil
	}
	defer lock.Unlock()
	if err := os.Remove(p); err != nil {
		return err.Error(), nil
	}
	return "", nil
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
