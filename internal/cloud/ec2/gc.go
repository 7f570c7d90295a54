package ec2

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/gcreport"
	"github.com/aminator-go/aminator/internal/plugin"
)

// gcKinds are the kinds of items the ec2 cloud's gc removes.
var gcKinds = []string{gcreport.Volume, gcreport.Snapshot}

// GCPlan is what the ec2 cloud's gc would remove: the volumes and
// snapshots bakes on this host left behind — their bake is no longer
// running here (its flock in the lock directory is free) — volumes to be
// detached (naming this instance) and deleted, snapshots no image uses to
// be deleted; and pool volumes nobody will take (pool_gc.go).
type GCPlan struct {
	c       *Cloud
	lockDir string
	host    string
	// Items are the volumes, then the snapshots, to remove.
	Items []gcreport.Item
	// Running are the resources of bakes still running here, left alone.
	Running []gcreport.Item
	pool    map[string]bool // the Items that are pool volumes (pool_gc.go)
}

// PlanGC lists what gc would remove, and why; nothing is removed.
func (c *Cloud) PlanGC(ctx context.Context, lockDir string) (*GCPlan, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	p := &GCPlan{c: c, lockDir: lockDir, host: h.InstanceID, pool: map[string]bool{}}
	vols, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("tag:purpose"), Values: []string{"amination"}},
		{Name: aws.String("tag:host"), Values: []string{h.InstanceID}},
	}})
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", apiErr("DescribeVolumes", err))
	}
	for _, v := range vols.Volumes {
		p.add(gcreport.Item{Kind: gcreport.Volume, ID: aws.ToString(v.VolumeId)}, tagsOf(v.Tags)["bake"])
	}
	snaps, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("tag:host"), Values: []string{h.InstanceID}},
		{Name: aws.String("tag-key"), Values: []string{"bake"}},
	}})
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", apiErr("DescribeSnapshots", err))
	}
	errs := []error{p.planPool(ctx)}
	for _, s := range snaps.Snapshots {
		id := aws.ToString(s.SnapshotId)
		used, err := c.imageUses(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !used {
			p.add(gcreport.Item{Kind: gcreport.Snapshot, ID: id}, tagsOf(s.Tags)["bake"])
		}
	}
	return p, errors.Join(errs...)
}

// add plans an item, or notes it as a running bake's.
func (p *GCPlan) add(it gcreport.Item, bake string) {
	if p.running(bake) {
		it.Reason = "its bake " + bake + " runs on this host"
		p.Running = append(p.Running, it)
		return
	}
	it.Reason = fmt.Sprintf("its bake %q no longer runs on this host", bake)
	p.Items = append(p.Items, it)
}

// running reports whether a bake holds its lock on this host.
func (p *GCPlan) running(bake string) bool {
	return bake != "" && flock.Held(filepath.Join(p.lockDir, bake+".lock"))
}

// imageUses reports whether an image of this account uses the snapshot.
func (c *Cloud) imageUses(ctx context.Context, snap string) (bool, error) {
	used, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("block-device-mapping.snapshot-id"), Values: []string{snap}},
	}})
	if err != nil {
		return false, apiErr("DescribeImages", err)
	}
	return len(used.Images) > 0, nil
}

// Planned reports the plan as a dry run.
func (p *GCPlan) Planned() *gcreport.Report {
	r := gcreport.New("ec2", true, gcKinds...)
	r.Removed = append(r.Removed, p.Items...)
	r.Running = append(r.Running, p.Running...)
	return r
}

// Execute removes the planned items, each described again first: one that
// is gone, that a running bake's tag now names, that is no longer this
// host's, or (a snapshot) that an image now uses is skipped.
func (p *GCPlan) Execute(ctx context.Context) (*gcreport.Report, error) {
	r := gcreport.New("ec2", false, gcKinds...)
	r.Running = append(r.Running, p.Running...)
	var errs []error
	for _, it := range p.Items {
		var why string
		var err error
		switch {
		case p.pool[it.ID]:
			why, err = p.removePoolVolume(ctx, it.ID)
		case it.Kind == gcreport.Volume:
			why, err = p.removeVolume(ctx, it.ID)
		default:
			why, err = p.removeSnapshot(ctx, it.ID)
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("gc: %w", err))
		case why != "":
			r.Skip(it, why)
		default:
			p.c.log.Debug("gc removed", "kind", it.Kind, "id", it.ID, "reason", it.Reason)
			r.Remove(it)
		}
	}
	return r, errors.Join(errs...)
}

// recheck says why a resource with these tags is no longer to be removed.
func (p *GCPlan) recheck(tags plugin.Tags) string {
	switch {
	case tags["host"] != p.host:
		return "no longer this host's"
	case p.running(tags["bake"]):
		return "its bake " + tags["bake"] + " runs on this host"
	}
	return ""
}

func (p *GCPlan) removeVolume(ctx context.Context, id string) (skipped string, err error) {
	v, err := p.c.Volume(ctx, id)
	if errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	if why := p.recheck(v.Tags); why != "" {
		return why, nil
	}
	if v.Device != "" {
		if err := p.c.DetachVolume(ctx, id); err != nil {
			return "", err
		}
	}
	if err := p.c.DeleteVolume(ctx, id); errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	} else if err != nil {
		return "", err
	}
	return "", nil
}

func (p *GCPlan) removeSnapshot(ctx context.Context, id string) (skipped string, err error) {
	s, err := p.c.Snapshot(ctx, id)
	if errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	if why := p.recheck(s.Tags); why != "" {
		return why, nil
	}
	if used, err := p.c.imageUses(ctx, id); err != nil {
		return "", err
	} else if used {
		return "an image uses it now", nil
	}
	if err := p.c.DeleteSnapshot(ctx, id); errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	} else if err != nil {
		return "", err
	}
	return "", nil
}
