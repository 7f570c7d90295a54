package ec2

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// The EC2 cloud keeps a pool, lists what aminator tagged and plans gc; it
// keeps no package manifests and no snapshot data on this host.
var (
	_ plugin.Pool      = (*Cloud)(nil)
	_ plugin.Lister    = (*Cloud)(nil)
	_ plugin.GCPlanner = (*Cloud)(nil)
)

// OnPoolTake makes fn be called after a bake takes a pool volume.
func (c *Cloud) OnPoolTake(fn func(snapshotID string)) { c.poolTaken = fn }

// PlanGarbage is PlanGC, with the cloud's lock directory, as a
// gcreport.Plan.
func (c *Cloud) PlanGarbage(ctx context.Context) (gcreport.Plan, error) {
	p, err := c.PlanGC(ctx, c.lockDir)
	if p == nil {
		return nil, err
	}
	return p, err
}

// ListSnapshots lists this account's snapshots in the region that bakes
// and pushes made (tagged bake or aminator:push), newest first.
func (c *Cloud) ListSnapshots(ctx context.Context) ([]*plugin.Snapshot, error) {
	in := &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{owner.Bake, owner.Push}}}}
	out := []*plugin.Snapshot{}
	for pg := ec2.NewDescribeSnapshotsPaginator(c.ec2, in); pg.HasMorePages(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", apiErr("DescribeSnapshots", err))
		}
		for _, s := range page.Snapshots {
			out = append(out, fromSnapshot(s))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// ListVolumes lists the region's volumes aminator made (tagged purpose:
// bakes', pools', external ones), newest first. A bake's volume on this
// instance whose bake no longer runs here is Orphaned.
func (c *Cloud) ListVolumes(ctx context.Context) ([]*plugin.Volume, error) {
	in := &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{owner.Purpose}}}}
	self := ""
	if h, err := c.Host(ctx); err == nil {
		self = h.InstanceID
	}
	gc := &GCPlan{c: c, lockDir: c.lockDir}
	out := []*plugin.Volume{}
	for pg := ec2.NewDescribeVolumesPaginator(c.ec2, in); pg.HasMorePages(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", apiErr("DescribeVolumes", err))
		}
		for _, v := range page.Volumes {
			pv := fromVolume(v)
			pv.Orphaned = self != "" && pv.Tags[owner.Purpose] == owner.PurposeWork && pv.Tags[owner.Host] == self && !gc.running(pv.Tags[owner.Bake])
			out = append(out, pv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}
