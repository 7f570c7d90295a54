package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/store/snapstore"
	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// gcKinds are the kinds of items the local cloud's gc removes, in order.
var gcKinds = []string{gcreport.OrphanedVolume, gcreport.PendingSnapshot, gcreport.Unregistered, gcreport.Manifest,
	gcreport.Chunk, gcreport.Temporary, gcreport.Clone, gcreport.Scratch, gcreport.Stale}

// GCPlan is what the local cloud's gc would remove: the volumes of bakes
// that are gone (pool volumes a killed bake was taking too), snapshots
// whose maker died before completing them, completed snapshots whose bake
// was killed before registering them, manifests whose row is gone, every
// chunk no snapshot uses (Store), what killed jobs left in tmp/ (when no
// job runs) and their job, owner and pool locks and empty mount points.
// Nothing of a job still running (its job lock held) is planned.
type GCPlan struct {
	c *Cloud
	// Items are the planned items but the store's, in the order they are
	// removed: volumes, snapshots, manifests, then (after the store's)
	// scratch and stale job files.
	Items []gcreport.Item
	// Store is the snapshot store's plan, made as if the planned
	// snapshots were deleted; nil when the store could not be planned
	// (PlanGC returned why with the plan: the rest can still be done).
	Store *snapstore.GCPlan
}

// beforeStore are the kinds removed before the store's items: the store
// is planned as if they were gone.
var beforeStore = map[string]bool{gcreport.OrphanedVolume: true, gcreport.PendingSnapshot: true,
	gcreport.Unregistered: true, gcreport.Manifest: true}

// PlanGC lists what gc would remove, and why; nothing is removed. When
// only the store cannot be planned, it returns the plan without the
// store's part, and the error.
func (c *Cloud) PlanGC(ctx context.Context) (*GCPlan, error) {
	p := &GCPlan{c: c}
	// Manifests first, rows after: a snapshot's row is made before its
	// manifest, so a manifest listed here whose row is missing below lost
	// its row for good.
	manifests, err := c.store.Snapshots()
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	gone, err := c.planVolumes(ctx, p)
	if err != nil {
		return nil, err
	}
	deleting, err := c.planSnapshots(ctx, p, manifests)
	if err != nil {
		return nil, err
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

// planVolumes plans the orphaned volumes; it returns their ids.
func (c *Cloud) planVolumes(ctx context.Context, p *GCPlan) (map[string]bool, error) {
	vs, err := c.ListVolumes(ctx)
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
	return gone, nil
}

// planSnapshots plans the snapshots whose maker died, those a killed bake
// never registered, and the manifests (listed before the rows were read)
// without a row; it returns their ids.
func (c *Cloud) planSnapshots(ctx context.Context, p *GCPlan, manifests []string) ([]string, error) {
	ss, err := c.ListSnapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	var deleting []string
	rows := map[string]bool{}
	for _, s := range ss {
		rows[s.ID] = true
		it := gcreport.Item{ID: s.ID}
		switch {
		case s.State == "pending" && !held(c.ownerLock(s.ID)):
			it.Kind, it.Reason = gcreport.PendingSnapshot, "its maker died before completing it"
		case s.State == "completed" && c.unregistered(ctx, s):
			it.Kind, it.Reason = gcreport.Unregistered, fmt.Sprintf("its bake %s was killed before registering it", s.Tags[owner.Bake])
		default:
			continue
		}
		p.Items = append(p.Items, it)
		deleting = append(deleting, s.ID)
	}
	for _, id := range manifests {
		if !rows[id] {
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.Manifest, ID: id, Reason: "its snapshot's row is gone"})
			deleting = append(deleting, id)
		}
	}
	return deleting, nil
}

// unregistered reports whether a completed snapshot was made by a job
// (its bake tag) that is no longer running, and no image uses it: the job
// was killed between its snapshot and its register step.
func (c *Cloud) unregistered(ctx context.Context, s *plugin.Snapshot) bool {
	job := s.Tags[owner.Bake]
	if job == "" || c.jobRunning(job) {
		return false
	}
	users, err := c.snapshotUsers(ctx, s.ID)
	return err == nil && len(users) == 0
}

// jobRunning reports whether the job of that id holds its lock. A lock
// file that is not there is not made (flock.Held would make one).
func (c *Cloud) jobRunning(job string) bool {
	if strings.ContainsAny(job, "/\x00") {
		return false
	}
	return held(filepath.Join(c.lockDir, job+".lock"))
}

// held reports whether a process holds the lock at path; a lock file that
// is not there is not made (flock.Held would make one, to be left behind).
func held(path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	return flock.Held(path)
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
		if !storeDone && !beforeStore[it.Kind] {
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
			crashpoint.Hit("gc-remove")
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
	case gcreport.Unregistered:
		return c.removeUnregistered(ctx, it.ID)
	case gcreport.Manifest:
		if _, err := c.Snapshot(ctx, it.ID); !errors.Is(err, plugin.ErrNotFound) {
			return "its snapshot has a row", err
		}
		return "", c.store.Delete(ctx, it.ID)
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

// removeUnregistered deletes a completed snapshot a killed bake never
// registered, if its bake still does not run and no image uses it now.
func (c *Cloud) removeUnregistered(ctx context.Context, id string) (skipped string, err error) {
	s, err := c.Snapshot(ctx, id)
	if errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	if !c.unregistered(ctx, s) {
		return "its bake runs, or an image uses it", nil
	}
	if err := c.DeleteSnapshot(ctx, id); err != nil {
		return "", err
	}
	return "", nil
}

// jobLocks are the locks a job (bake, foundation, boot test, push) holds for its
// lifetime (the CLI takes LOCKDIR/<job id>.lock), and an S3 bundle of a
// local image (its disk and parts are in tmp/) while it is made and sent.
var jobLocks = []string{"bake-*.lock", "foundation-*.lock", "test-*.lock", "push-*.lock", "bundle-*.lock"}

// planStale lists what a job killed with SIGKILL leaves outside tmp/: its
// job lock, the owner locks of volumes and snapshots and the pool locks of
// snapshots that are gone (each once older than staleAfter, as a job
// that has just made its lock file takes it, and free), and the empty
// mount point of a volume that is gone or in gone (removed by this gc
// first).
func (c *Cloud) planStale(ctx context.Context, gone map[string]bool) []gcreport.Item {
	var out []gcreport.Item
	for _, pat := range append(jobLocks, ownerLocks...) {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if st, err := os.Stat(l); err != nil || time.Since(st.ModTime()) < staleAfter || flock.Held(l) {
				continue
			}
			why := "the lock of a job that is gone"
			if owned, ok := c.lockOwner(l); ok {
				if !c.ownerGone(ctx, owned, gone) {
					continue
				}
				why = "the lock of " + owned + ", which is gone"
			}
			out = append(out, gcreport.Item{Kind: gcreport.Stale, ID: l, Reason: why})
		}
	}
	return append(out, c.planMountPoints(ctx, gone)...)
}

// staleAfter is how old a free lock file must be to be stale: a process
// makes its lock file and takes it in one call (flock.TryExclusive), so a
// file that has been free that long was left by a process that is gone.
const staleAfter = 2 * time.Second

// ownerLocks are the locks of a volume's or snapshot's owner and of a
// snapshot's pool filler.
var ownerLocks = []string{"vol-*.lock", "snap-*.lock", "pool-snap-*.lock"}

// lockOwner names the volume or snapshot an owner or pool lock is of.
func (c *Cloud) lockOwner(lock string) (string, bool) {
	name := strings.TrimSuffix(filepath.Base(lock), ".lock")
	name = strings.TrimPrefix(name, "pool-")
	if strings.HasPrefix(name, "vol-") || strings.HasPrefix(name, "snap-") {
		return name, true
	}
	return "", false
}

// ownerGone reports whether a volume or snapshot has no row (or is a
// volume in gone, removed by this gc first).
func (c *Cloud) ownerGone(ctx context.Context, id string, gone map[string]bool) bool {
	if gone[id] {
		return true
	}
	var err error
	if strings.HasPrefix(id, "vol-") {
		_, err = c.Volume(ctx, id)
	} else {
		_, err = c.Snapshot(ctx, id)
	}
	return errors.Is(err, plugin.ErrNotFound)
}

// planMountPoints lists the empty mount points of volumes that are gone.
func (c *Cloud) planMountPoints(ctx context.Context, gone map[string]bool) []gcreport.Item {
	var out []gcreport.Item
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

// removeStale removes a stale lock, taken first (its job may have started
// again) and, an owner's, only while its volume or snapshot is still
// gone; or an empty mount point (rmdir) whose volume is gone.
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
	if owned, ok := c.lockOwner(p); ok && !c.ownerGone(ctx, owned, nil) {
		return owned + " is there", nil
	}
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
