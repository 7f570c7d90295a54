package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// bakeSnapshot makes a completed snapshot of a fresh volume, tagged as a
// bake's, as a bake's snapshot step does; the volume is deleted.
func bakeSnapshot(t *testing.T, c *Cloud, bake string) *plugin.Snapshot {
	t.Helper()
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 4 << 20, Tags: owner.Work(bake, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.VolumePath(v.ID), []byte("baked "+bake), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(c.VolumePath(v.ID), 4<<20)
	s, err := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: v.ID, Tags: plugin.Tags{owner.Bake: bake, owner.Host: "here"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	return s
}

// holdJob takes a job's lock, as a running job holds it.
func holdJob(t *testing.T, c *Cloud, job string) {
	t.Helper()
	l, err := flock.TryExclusive(filepath.Join(c.lockDir, job+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Unlock() })
}

func storeChunks(t *testing.T, c *Cloud) []string {
	t.Helper()
	ps, _ := filepath.Glob(filepath.Join(c.store.Dir(), "chunks", "*", "*"))
	return ps
}

// A completed snapshot whose bake was killed before registering it is
// planned and removed, with its chunks; one whose bake still runs, and one
// an image uses, are not touched.
func TestGCUnregisteredSnapshot(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	dead := bakeSnapshot(t, c, "bake-dead")
	live := bakeSnapshot(t, c, "bake-live")
	holdJob(t, c, "bake-live")
	used := bakeSnapshot(t, c, "bake-done")
	if _, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "done", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: used.ID}}}); err != nil {
		t.Fatal(err)
	}
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Planned().IDs(gcreport.Unregistered); !slices.Equal(got, []string{dead.ID}) {
		t.Fatalf("planned %v, want only %s", got, dead.ID)
	}
	if _, err := os.Stat(filepath.Join(c.lockDir, "bake-dead.lock")); err == nil {
		t.Error("planning made a lock file for the dead bake")
	}
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IDs(gcreport.Unregistered); !slices.Equal(got, []string{dead.ID}) || len(r.IDs(gcreport.Chunk)) == 0 {
		t.Errorf("removed %+v", r.Removed)
	}
	if _, err := c.Snapshot(ctx, dead.ID); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("the dead bake's snapshot: %v", err)
	}
	if _, err := c.store.LoadManifest(dead.ID); err == nil {
		t.Error("the dead bake's manifest is left")
	}
	for _, s := range []*plugin.Snapshot{live, used} {
		if _, err := c.store.LoadManifest(s.ID); err != nil {
			t.Errorf("snapshot %s: %v", s.ID, err)
		}
	}
}

// A pool volume a bake was taking when it was killed (left creating, with
// the pool's tags) is an orphan once neither the take lock nor its owner
// lock is held.
func TestGCPoolVolumeLeftCreating(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	im, err := c.Import(ctx, rawFile(t, 8<<20), ImportOptions{Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	snap := im.Root().SnapshotID
	if _, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: 1}); err != nil {
		t.Fatal(err)
	}
	// The bake claims the volume, and dies before it takes the owner lock.
	var id string
	if err := c.db.QueryRowContext(ctx, `UPDATE volumes SET state='creating' WHERE state='pooled' RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	taking, err := flock.Shared(c.takeLock()) // another bake is taking one
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Volume(ctx, id); err != nil || v.Orphaned {
		t.Errorf("while a bake takes a pool volume: %+v %v", v, err)
	}
	taking.Unlock()
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Planned().IDs(gcreport.OrphanedVolume); !slices.Equal(got, []string{id}) {
		t.Fatalf("planned %v, want %s", got, id)
	}
	if _, err := p.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Volume(ctx, id); !errors.Is(err, plugin.ErrNotFound) || fileExists(c.VolumePath(id)) {
		t.Errorf("the volume is left: %v", err)
	}
}

// A manifest whose row was deleted before the store delete is planned
// and removed with its chunks; the dry run removes nothing.
func TestGCManifestWithoutRow(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	s := bakeSnapshot(t, c, "bake-x")
	if _, err := c.deleteRow(ctx, "snapshots", s.ID, ""); err != nil { // killed before the store delete
		t.Fatal(err)
	}
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dry := p.Planned()
	if got := dry.IDs(gcreport.Manifest); !slices.Equal(got, []string{s.ID}) || len(dry.IDs(gcreport.Chunk)) == 0 {
		t.Fatalf("planned %+v", dry.Removed)
	}
	if _, err := c.store.LoadManifest(s.ID); err != nil {
		t.Fatalf("the plan removed the manifest: %v", err)
	}
	if _, err := p.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.store.LoadManifest(s.ID); err == nil {
		t.Error("the manifest is left")
	}
	if n := len(storeChunks(t, c)); n != 0 {
		t.Errorf("%d chunks left", n)
	}
}

// One unreadable manifest does not stop gc: it is reported, every chunk is
// kept (it may name any), and the rest is collected.
func TestGCSurvivesAnUnreadableManifest(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	bad := bakeSnapshot(t, c, "bake-a")
	if _, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "a", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: bad.ID}}}); err != nil {
		t.Fatal(err)
	}
	dead := bakeSnapshot(t, c, "bake-dead")
	if err := os.WriteFile(filepath.Join(c.store.Dir(), "snapshots", bad.ID+".json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	chunks := len(storeChunks(t, c))
	tmp := filepath.Join(c.store.Dir(), "tmp", "chunk-left")
	os.WriteFile(tmp, []byte("x"), 0o600)
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if got := r.IDs(gcreport.Unregistered); !slices.Equal(got, []string{dead.ID}) || len(r.IDs(gcreport.Temporary)) != 1 {
		t.Errorf("removed %+v", r.Removed)
	}
	if n := len(storeChunks(t, c)); n != chunks || len(r.IDs(gcreport.Chunk)) != 0 {
		t.Errorf("%d of %d chunks left; removed %v", n, chunks, r.IDs(gcreport.Chunk))
	}
	var reported bool
	for _, it := range r.Skipped {
		reported = reported || it.Kind == gcreport.Manifest && it.ID == bad.ID && strings.Contains(it.Reason, "unreadable")
	}
	if !reported {
		t.Errorf("the unreadable manifest is not reported: %+v", r.Skipped)
	}
	var text strings.Builder
	r.WriteText(&text)
	if !strings.Contains(text.String(), "skipped manifest "+bad.ID+": unreadable") {
		t.Errorf("text report:\n%s", text.String())
	}
}

// Owner and pool locks of volumes and snapshots that are gone are stale
// once old and free; those of existing ones, fresh ones and held ones are
// kept.
func TestGCStaleOwnerLocks(t *testing.T) {
	c := open(t)
	s := bakeSnapshot(t, c, "bake-a")
	old := time.Now().Add(-time.Minute)
	mk := func(name string, age time.Time) string {
		p := filepath.Join(c.lockDir, name)
		os.WriteFile(p, nil, 0o644)
		os.Chtimes(p, age, age)
		return p
	}
	goneVol := mk(ids.New("vol")+".lock", old)
	goneSnap := mk(ids.New("snap")+".lock", old)
	gonePool := mk("pool-"+ids.New("snap")+".lock", old)
	livePool := mk("pool-"+s.ID+".lock", old)
	fresh := mk(ids.New("vol")+".lock", time.Now())
	held := mk(ids.New("snap")+".lock", old)
	l, err := flock.TryExclusive(held)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	r, err := gc(t, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{goneVol, goneSnap, gonePool} {
		if fileExists(p) || !slices.Contains(r.IDs(gcreport.Stale), p) {
			t.Errorf("%s left", p)
		}
	}
	for _, p := range []string{livePool, fresh, held} {
		if !fileExists(p) {
			t.Errorf("%s removed", p)
		}
	}
}
