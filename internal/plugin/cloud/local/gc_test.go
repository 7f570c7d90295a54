package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// gc plans and executes the cloud's gc.
func gc(t *testing.T, c *Cloud) (*gcreport.Report, error) {
	t.Helper()
	p, err := c.PlanGC(context.Background())
	if p == nil {
		t.Fatal(err)
	}
	r, xerr := p.Execute(context.Background())
	return r, errors.Join(err, xerr)
}

// gcFixture makes two orphaned volumes, a pending snapshot whose maker is
// gone and a stale job lock, and returns them.
func gcFixture(t *testing.T, c *Cloud) (v1, v2, snap, lock string) {
	t.Helper()
	ctx := context.Background()
	im, err := c.Import(ctx, rawFile(t, 8<<20), ImportOptions{Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for range 2 {
		v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: im.Root().SnapshotID, SizeBytes: 16 << 20, Tags: plugin.Tags{owner.Purpose: owner.PurposeWork}})
		if err != nil {
			t.Fatal(err)
		}
		c.releaseOwner(v.ID) // its bake dies
		vs = append(vs, v.ID)
	}
	snap = ids.New("snap")
	if _, err := c.db.ExecContext(ctx, `INSERT INTO snapshots(id,state,created_at) VALUES(?,'pending',?)`, snap, now()); err != nil {
		t.Fatal(err)
	}
	lock = filepath.Join(c.lockDir, "bake-dead.lock")
	os.MkdirAll(c.lockDir, 0o755)
	os.WriteFile(lock, nil, 0o644)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(lock, old, old)
	return vs[0], vs[1], snap, lock
}

// The plan lists the orphaned volumes, the dead maker's snapshot and the
// stale lock; a dry run removes nothing; executing removes exactly them.
func TestGCPlanDryRunExecute(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	v1, v2, snap, lock := gcFixture(t, c)
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dry, err := gcreport.Run(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := dry.IDs(gcreport.OrphanedVolume); len(got) != 2 || got[0] == got[1] || (got[0] != v1 && got[0] != v2) {
		t.Errorf("planned volumes %v, want %s and %s", got, v1, v2)
	}
	if got := dry.IDs(gcreport.PendingSnapshot); len(got) != 1 || got[0] != snap {
		t.Errorf("planned snapshots %v, want %s", got, snap)
	}
	if got := dry.IDs(gcreport.Stale); len(got) != 1 || got[0] != lock {
		t.Errorf("planned stale %v, want %s", got, lock)
	}
	for _, it := range dry.Removed {
		if it.Reason == "" {
			t.Errorf("%s %s planned without a reason", it.Kind, it.ID)
		}
	}
	if !fileExists(c.VolumePath(v1)) || !fileExists(c.VolumePath(v2)) || !fileExists(lock) {
		t.Error("the dry run removed something")
	}
	if _, err := c.Snapshot(ctx, snap); err != nil {
		t.Errorf("the dry run removed the snapshot: %v", err)
	}
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Skipped) != 0 || len(r.IDs(gcreport.OrphanedVolume)) != 2 || len(r.IDs(gcreport.PendingSnapshot)) != 1 || len(r.IDs(gcreport.Stale)) != 1 {
		t.Errorf("executed %+v, skipped %+v", r.Removed, r.Skipped)
	}
	if fileExists(c.VolumePath(v1)) || fileExists(c.VolumePath(v2)) || fileExists(lock) {
		t.Error("a planned item is left")
	}
	if _, err := c.Snapshot(ctx, snap); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("the pending snapshot is left: %v", err)
	}
}

// Items that changed between plan and execution are skipped and reported:
// a volume a bake took, a snapshot completed, a lock a job holds again.
func TestGCExecuteSkipsWhatChanged(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	v1, v2, snap, lock := gcFixture(t, c)
	other, err := Open(Options{StateDir: c.Dir()}) // gc, in another process
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p, err := other.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AdoptVolume(ctx, v2); err != nil { // a bake takes v2
		t.Fatal(err)
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE snapshots SET state='completed' WHERE id=?`, snap); err != nil {
		t.Fatal(err)
	}
	held, err := flock.TryExclusive(lock) // a job runs again
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IDs(gcreport.OrphanedVolume); len(got) != 1 || got[0] != v1 {
		t.Errorf("removed volumes %v, want only %s", got, v1)
	}
	if n := len(r.IDs(gcreport.PendingSnapshot)) + len(r.IDs(gcreport.Stale)); n != 0 {
		t.Errorf("removed %+v", r.Removed)
	}
	skipped := map[string]string{}
	for _, it := range r.Skipped {
		skipped[it.ID] = it.Reason
	}
	for _, id := range []string{v2, snap, lock} {
		if skipped[id] == "" {
			t.Errorf("%s not reported skipped: %+v", id, r.Skipped)
		}
	}
	if !fileExists(c.VolumePath(v2)) || !fileExists(lock) {
		t.Error("removed an item that changed since the plan")
	}
	if s, err := c.Snapshot(ctx, snap); err != nil || s.State != "completed" {
		t.Errorf("the completed snapshot: %+v %v", s, err)
	}
}
