package ec2

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// planPool adds to the plan the pool volumes nobody will take: those of a
// host that is gone (no such instance, or terminated), and this host's
// that are stuck in creating (longer than wait_timeout) or in error.
func (p *GCPlan) planPool(ctx context.Context) error {
	out, err := p.c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		tagIs(owner.Purpose, owner.PurposePool),
	}})
	if err != nil {
		return fmt.Errorf("plan gc: %w", apiErr("DescribeVolumes", err))
	}
	hosts := map[string]bool{}
	for _, v := range out.Volumes {
		if h := tagsOf(v.Tags)[owner.Host]; h != p.host && h != "" {
			hosts[h] = true
		}
	}
	alive, err := p.c.liveInstances(ctx, slices.Sorted(maps.Keys(hosts)))
	if err != nil {
		return fmt.Errorf("plan gc: %w", err)
	}
	for _, v := range out.Volumes {
		if why := p.c.poolLeftover(v, p.host, alive); why != "" {
			p.pool[aws.ToString(v.VolumeId)] = true
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.Volume, ID: aws.ToString(v.VolumeId), Reason: why})
		}
	}
	return nil
}

// poolLeftover says why a pool volume is to be removed ("" if it is not).
func (c *Cloud) poolLeftover(v types.Volume, self string, alive map[string]bool) string {
	host := tagsOf(v.Tags)[owner.Host]
	switch {
	case host != self && !alive[host]:
		return fmt.Sprintf("pool volume of host %q, which is gone", host)
	case host != self:
		return ""
	case v.State == types.VolumeStateError:
		return "pool volume in error"
	case v.State == types.VolumeStateCreating && time.Since(aws.ToTime(v.CreateTime)) > c.waitOpts():
		return fmt.Sprintf("pool volume stuck in creating since %s", aws.ToTime(v.CreateTime).UTC().Format(time.RFC3339))
	}
	return ""
}

// liveInstances reports which of the instances exist and are not
// terminated (or being terminated).
func (c *Cloud) liveInstances(ctx context.Context, ids []string) (map[string]bool, error) {
	alive := map[string]bool{}
	if len(ids) == 0 {
		return alive, nil
	}
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: ids},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiErr("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if s := i.State; s == nil || (s.Name != types.InstanceStateNameTerminated && s.Name != types.InstanceStateNameShuttingDown) {
					alive[aws.ToString(i.InstanceId)] = true
				}
			}
		}
	}
	return alive, nil
}

// removePoolVolume deletes a planned pool volume after describing it
// again: one taken by a bake meanwhile (no longer purpose=pool) is skipped.
func (p *GCPlan) removePoolVolume(ctx context.Context, id string) (skipped string, err error) {
	v, err := p.c.Volume(ctx, id)
	if errors.Is(err, plugin.ErrNotFound) {
		return "gone", nil
	}
	if err != nil {
		return "", err
	}
	if !owner.IsPooled(v.Tags) {
		return "taken by a bake", nil
	}
	return p.detachAndDelete(ctx, id, v.Device != "" && v.AttachedTo == p.host)
}
