package ec2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// gcKinds are the kinds of items the ec2 cloud's gc removes.
var gcKinds = []string{gcreport.Volume, gcreport.Snapshot, gcreport.Copy}

// GCPlan is what the ec2 cloud's gc would remove: the volumes and
// snapshots bakes on this host left behind — their bake is no longer
// running here (its flock in the lock directory is free) — volumes to be
// detached (naming this instance) and deleted, snapshots no image uses to
// be deleted; pool volumes nobody will take (pool_gc.go); the copies in
// other regions of a bake killed while copying (owner.Copying), deregistered
// with their snapshots; and the EBS snapshots of pushes from this machine
// killed before they registered their image.
type GCPlan struct {
	c        *Cloud
	lockDir  string
	host     string // this instance; "" when this is none
	pushHost string // this machine's name
	// Items are the volumes, then the snapshots, then the copies, to remove.
	Items []gcreport.Item
	// Running are the resources of bakes still running here, left alone.
	Running []gcreport.Item
	pool    map[string]bool // the Items that are pool volumes (pool_gc.go)
}

// PlanGC lists what gc would remove, and why; nothing is removed. Off an
// EC2 instance (no instance metadata) it plans only the pushes' leftovers,
// and returns the plan with the reason.
func (c *Cloud) PlanGC(ctx context.Context, lockDir string) (*GCPlan, error) {
	p := &GCPlan{c: c, lockDir: lockDir, pool: map[string]bool{}}
	p.pushHost, _ = os.Hostname()
	var errs []error
	if h, err := c.Host(ctx); err != nil {
		errs = append(errs, fmt.Errorf("plan gc: only pushes' leftovers are collected: %w", err))
	} else {
		p.host = h.InstanceID
		if err := p.planBakes(ctx); err != nil {
			return nil, err
		}
		errs = append(errs, p.planPool(ctx))
		errs = append(errs, p.planCopies(ctx)...)
	}
	if err := p.planPushes(ctx); err != nil {
		return nil, err
	}
	sort.SliceStable(p.Items, func(i, j int) bool { return kindOrder[p.Items[i].Kind] < kindOrder[p.Items[j].Kind] })
	return p, errors.Join(errs...)
}

// planBakes plans the volumes and snapshots bakes on this host left.
func (p *GCPlan) planBakes(ctx context.Context) error {
	c := p.c
	vols, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		tagIs(owner.Purpose, owner.PurposeWork),
		tagIs(owner.Host, p.host),
	}})
	if err != nil {
		return fmt.Errorf("plan gc: %w", apiErr("DescribeVolumes", err))
	}
	for _, v := range vols.Volumes {
		p.add(gcreport.Item{Kind: gcreport.Volume, ID: aws.ToString(v.VolumeId)}, tagsOf(v.Tags)[owner.Bake])
	}
	return p.planSnapshots(ctx, []types.Filter{
		tagIs(owner.Host, p.host),
		hasTag(owner.Bake),
	}, owner.Bake)
}

// planSnapshots plans the snapshots the filters find that no image uses;
// job is the tag that names the bake or push that made each.
func (p *GCPlan) planSnapshots(ctx context.Context, filters []types.Filter, job string) error {
	snaps, err := p.c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: filters})
	if err != nil {
		return fmt.Errorf("plan gc: %w", apiErr("DescribeSnapshots", err))
	}
	used, err := p.c.usedSnapshots(ctx)
	if err != nil {
		return fmt.Errorf("plan gc: %w", err)
	}
	for _, s := range snaps.Snapshots {
		if id := aws.ToString(s.SnapshotId); !used[id] {
			p.add(gcreport.Item{Kind: gcreport.Snapshot, ID: id}, tagsOf(s.Tags)[job])
		}
	}
	return nil
}

// planPushes plans the EBS snapshots of pushes from this machine that no
// image uses (the push was killed before it registered one).
func (p *GCPlan) planPushes(ctx context.Context) error {
	if p.pushHost == "" {
		return nil
	}
	return p.planSnapshots(ctx, []types.Filter{
		tagIs(owner.PushHost, p.pushHost),
		hasTag(owner.Push),
	}, owner.Push)
}

// planCopies plans, in every other region (looked at in parallel, eight
// at a time), the copies that bakes on this host were making when they
// were killed.
func (p *GCPlan) planCopies(ctx context.Context) []error {
	regions, err := p.c.ec2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return []error{fmt.Errorf("plan gc: copies in other regions: %w", apiErr("DescribeRegions", err))}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, r := range regions.Regions {
		region := aws.ToString(r.RegionName)
		if region == p.c.region {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ims, err := p.markedCopies(ctx, region)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			for _, im := range ims {
				p.add(gcreport.Item{Kind: gcreport.Copy, ID: region + "/" + aws.ToString(im.ImageId)}, tagsOf(im.Tags)[owner.Copying])
			}
		}()
	}
	wg.Wait()
	return errs
}

// kindOrder is the order items are removed in.
var kindOrder = map[string]int{gcreport.Volume: 0, gcreport.Snapshot: 1, gcreport.Copy: 2}

// markedCopies lists a region's images that carry this host's owner.CopyHost
// and an owner.Copying.
func (p *GCPlan) markedCopies(ctx context.Context, region string) ([]types.Image, error) {
	out, err := p.c.regional(region).DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{
		tagIs(owner.CopyHost, p.host),
		hasTag(owner.Copying),
	}})
	if err != nil {
		return nil, fmt.Errorf("plan gc: copies in %s: %w", region, apiErr("DescribeImages", err))
	}
	return out.Images, nil
}

// add plans an item, or notes it as a running bake's.
func (p *GCPlan) add(it gcreport.Item, bake string) {
	if p.running(bake) {
		it.Reason = "its job " + bake + " runs on this host"
		p.Running = append(p.Running, it)
		return
	}
	it.Reason = fmt.Sprintf("its job %q no longer runs on this host", bake)
	p.Items = append(p.Items, it)
}

// running reports whether a bake (or push) holds its lock on this host;
// a lock file that is not there is not made.
func (p *GCPlan) running(job string) bool {
	if job == "" || strings.ContainsAny(job, "/\\") {
		return false
	}
	l := filepath.Join(p.lockDir, job+".lock")
	if _, err := os.Stat(l); err != nil {
		return false
	}
	return flock.Held(l)
}

// imageUses reports whether an image of this account uses the snapshot.
func (c *Cloud) imageUses(ctx context.Context, snap string) (bool, error) {
	used, err := c.usedSnapshots(ctx)
	return used[snap], err
}

// usedSnapshots lists the snapshots this account's images use. It reads
// every image (one paged call) rather than filtering by
// block-device-mapping.snapshot-id per snapshot, which moto does not
// implement and which costs a call per snapshot.
func (c *Cloud) usedSnapshots(ctx context.Context) (map[string]bool, error) {
	used := map[string]bool{}
	pages := ec2.NewDescribeImagesPaginator(c.ec2, &ec2.DescribeImagesInput{Owners: []string{"self"}, MaxResults: aws.Int32(1000)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, apiErr("DescribeImages", err)
		}
		for _, im := range out.Images {
			for _, b := range im.BlockDeviceMappings {
				if b.Ebs != nil && b.Ebs.SnapshotId != nil {
					used[*b.Ebs.SnapshotId] = true
				}
			}
		}
	}
	return used, nil
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
		case it.Kind == gcreport.Copy:
			why, err = p.removeCopy(ctx, it.ID)
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
	if push := tags[owner.Push]; push != "" {
		switch {
		case tags[owner.PushHost] != p.pushHost:
			return "no longer this machine's push"
		case p.running(push):
			return "its push " + push + " runs on this machine"
		}
		return ""
	}
	switch {
	case tags[owner.Host] != p.host:
		return "no longer this host's"
	case p.running(tags[owner.Bake]):
		return "its bake " + tags[owner.Bake] + " runs on this host"
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
	return p.detachAndDelete(ctx, id, v.Device != "")
}

// detachAndDelete detaches a volume (if detach) and deletes it; a volume
// already gone is skipped as "gone".
func (p *GCPlan) detachAndDelete(ctx context.Context, id string, detach bool) (skipped string, err error) {
	if detach {
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

// removeCopy deregisters a copy (REGION/AMI) and deletes its snapshots if
// it still carries its bake's owner.Copying, for this host, and that bake
// does not run.
func (p *GCPlan) removeCopy(ctx context.Context, item string) (skipped string, err error) {
	region, id, _ := strings.Cut(item, "/")
	out, err := p.c.regional(region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if errors.Is(apiErr("DescribeImages", err), plugin.ErrNotFound) {
			return "gone", nil
		}
		return "", apiErr("DescribeImages", err)
	}
	if len(out.Images) == 0 {
		return "gone", nil
	}
	tags := tagsOf(out.Images[0].Tags)
	switch {
	case tags[owner.Copying] == "":
		return "its bake finished copying it", nil
	case tags[owner.CopyHost] != p.host:
		return "no longer this host's", nil
	case p.running(tags[owner.Copying]):
		return "its bake " + tags[owner.Copying] + " runs on this host", nil
	}
	return "", p.c.removeCopy(ctx, plugin.RegionImage{Region: region, ImageID: id})
}
