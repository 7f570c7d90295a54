package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// The fake has the capabilities both real clouds share, and the local
// cloud's manifests, so a unit test needs no other fake: a pool (volumes
// tagged purpose=pool that CreateVolume of their snapshot takes), listing,
// manifests (kept by RegisterImage) and gc of the volumes and snapshots of
// bakes that are not Running.
var (
	_ plugin.Pool      = (*Cloud)(nil)
	_ plugin.Lister    = (*Cloud)(nil)
	_ plugin.Manifests = (*Cloud)(nil)
	_ plugin.GCPlanner = (*Cloud)(nil)
)

// FillPool sets a snapshot's pool target and makes volumes until it is met.
func (c *Cloud) FillPool(ctx context.Context, f plugin.PoolFill) (int, error) {
	if err := c.call(ctx, "FillPool", f.Snapshot); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snapshots[f.Snapshot]
	if !ok {
		return 0, notFound("snapshot", f.Snapshot)
	}
	if f.Target >= 0 {
		c.pools[f.Snapshot] = fakePool{target: f.Target, base: f.Base}
	}
	p, ok := c.pools[f.Snapshot]
	if !ok {
		return 0, nil
	}
	made := 0
	for len(c.pooled(f.Snapshot)) < p.target {
		v := &plugin.Volume{ID: c.newID("vol"), SnapshotID: s.ID, SizeBytes: s.SizeBytes, State: "available", CreatedAt: time.Now(),
			Tags: plugin.Tags{owner.Purpose: owner.PurposePool, owner.Base: p.base}}
		c.volumes[v.ID] = v
		made++
	}
	return made, nil
}

// pooled lists the ready pool volumes of a snapshot, by id; c.mu is held.
func (c *Cloud) pooled(snap string) []string {
	var out []string
	for id, v := range c.volumes {
		if v.SnapshotID == snap && v.Tags[owner.Purpose] == owner.PurposePool && v.State == "available" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// takePooled retags a ready pool volume of r's snapshot as r asks and
// returns it, or nil when there is none of its size; c.mu is held.
func (c *Cloud) takePooled(r plugin.VolumeRequest) *plugin.Volume {
	for _, id := range c.pooled(r.SnapshotID) {
		v := c.volumes[id]
		if r.SizeBytes > v.SizeBytes {
			continue
		}
		v.Tags = clone(r.Tags)
		if c.poolTaken != nil {
			c.poolTaken(r.SnapshotID)
		}
		cp := *v
		cp.Tags = clone(v.Tags)
		return &cp
	}
	return nil
}

// PoolStatus lists the pools, by snapshot id.
func (c *Cloud) PoolStatus(ctx context.Context) ([]plugin.PoolStatus, error) {
	if err := c.call(ctx, "PoolStatus", ""); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []plugin.PoolStatus{}
	for snap, p := range c.pools {
		ps := plugin.PoolStatus{SnapshotID: snap, Images: []string{}, Target: p.target, Ready: len(c.pooled(snap))}
		if p.base != "" {
			ps.Images = append(ps.Images, p.base)
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SnapshotID < out[j].SnapshotID })
	return out, nil
}

// DrainPool forgets a pool's target ("" every pool's) and deletes its
// ready volumes.
func (c *Cloud) DrainPool(ctx context.Context, snap string) (int, error) {
	if err := c.call(ctx, "DrainPool", snap); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for s := range c.pools {
		if snap != "" && s != snap {
			continue
		}
		delete(c.pools, s)
		for _, id := range c.pooled(s) {
			delete(c.volumes, id)
			n++
		}
	}
	return n, nil
}

// OnPoolTake makes fn be called after CreateVolume takes a pool volume
// (with the cloud locked: fn must not call it).
func (c *Cloud) OnPoolTake(fn func(snapshotID string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.poolTaken = fn
}

// ListSnapshots lists the snapshots, newest first.
func (c *Cloud) ListSnapshots(ctx context.Context) ([]*plugin.Snapshot, error) {
	if err := c.call(ctx, "ListSnapshots", ""); err != nil {
		return nil, err
	}
	out := c.Snapshots()
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID > out[j].ID }) // ids are numbered in order
	return out, nil
}

// ListVolumes lists the volumes, newest first; a detached volume of a bake
// not Running is Orphaned.
func (c *Cloud) ListVolumes(ctx context.Context) ([]*plugin.Volume, error) {
	if err := c.call(ctx, "ListVolumes", ""); err != nil {
		return nil, err
	}
	out := c.Volumes()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range out {
		v.Orphaned = c.leftover(v.Tags)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// leftover reports whether tags name a bake that is not Running; c.mu is held.
func (c *Cloud) leftover(tags plugin.Tags) bool {
	b := tags[owner.Bake]
	return b != "" && !c.Running[b]
}

// Manifest returns the packages an image was registered with.
func (c *Cloud) Manifest(ctx context.Context, imageID string) ([]plugin.Package, error) {
	if err := c.call(ctx, "Manifest", imageID); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.images[imageID]; !ok {
		return nil, notFound("image", imageID)
	}
	out := append([]plugin.Package(nil), c.manifests[imageID]...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Arch < out[j].Arch
	})
	return out, nil
}

// PlanGarbage plans the detached volumes, and the snapshots no image
// uses, that bakes not Running left (tagged bake).
func (c *Cloud) PlanGarbage(ctx context.Context) (gcreport.Plan, error) {
	if err := c.call(ctx, "PlanGarbage", ""); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &gcPlan{c: c}
	for _, v := range c.volumes {
		if v.State != "in-use" && c.leftover(v.Tags) {
			p.items = append(p.items, gcreport.Item{Kind: gcreport.Volume, ID: v.ID, Reason: "bake " + v.Tags[owner.Bake] + " is gone"})
		}
	}
	used := map[string]bool{}
	for _, im := range c.images {
		for _, b := range im.BlockDevices {
			used[b.SnapshotID] = true
		}
	}
	for _, s := range c.snapshots {
		if !used[s.ID] && c.leftover(s.Tags) {
			p.items = append(p.items, gcreport.Item{Kind: gcreport.Snapshot, ID: s.ID, Reason: "bake " + s.Tags[owner.Bake] + " is gone"})
		}
	}
	sort.Slice(p.items, func(i, j int) bool {
		if p.items[i].Kind != p.items[j].Kind {
			return p.items[i].Kind == gcreport.Volume
		}
		return p.items[i].ID < p.items[j].ID
	})
	return p, nil
}

// gcPlan is the fake's gc plan.
type gcPlan struct {
	c     *Cloud
	items []gcreport.Item
}

func (p *gcPlan) Planned() *gcreport.Report {
	r := gcreport.New("fake", true, gcreport.Volume, gcreport.Snapshot)
	r.Removed = append(r.Removed, p.items...)
	return r
}

// Execute removes the planned items; one gone or taken by a running bake
// since is skipped.
func (p *gcPlan) Execute(ctx context.Context) (*gcreport.Report, error) {
	r := gcreport.New("fake", false, gcreport.Volume, gcreport.Snapshot)
	var errs []error
	for _, it := range p.items {
		var err error
		if it.Kind == gcreport.Volume {
			err = p.c.DeleteVolume(ctx, it.ID)
		} else {
			err = p.c.DeleteSnapshot(ctx, it.ID)
		}
		switch {
		case errors.Is(err, plugin.ErrNotFound):
			r.Skip(it, "gone already")
		case err != nil:
			errs = append(errs, fmt.Errorf("gc: %w", err))
		default:
			r.Remove(it)
		}
	}
	return r, errors.Join(errs...)
}
