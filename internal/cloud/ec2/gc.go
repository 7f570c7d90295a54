package ec2

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/plugin"
)

// GCReport says what gc removed (or would, in a dry run).
type GCReport struct {
	Volumes   []string `json:"volumes"`
	Snapshots []string `json:"snapshots"`
	// Running are resources of bakes still running on this host.
	Running []string `json:"running"`
}

// GC finds the volumes and snapshots bakes on this host left behind — their
// bake is no longer running here (its flock in lockDir is free) — and
// removes them: volumes are detached (naming this instance) and deleted;
// snapshots no image uses are deleted.
func (c *Cloud) GC(ctx context.Context, lockDir string, dryRun bool) (*GCReport, error) {
	r := &GCReport{Volumes: []string{}, Snapshots: []string{}, Running: []string{}}
	h, err := c.Host(ctx)
	if err != nil {
		return r, err
	}
	running := func(bake string) bool {
		return bake != "" && flock.Held(filepath.Join(lockDir, bake+".lock"))
	}
	vols, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("tag:purpose"), Values: []string{"amination"}},
		{Name: aws.String("tag:host"), Values: []string{h.InstanceID}},
	}})
	if err != nil {
		return r, apiErr("DescribeVolumes", err)
	}
	var errs []error
	for _, v := range vols.Volumes {
		id, bake := aws.ToString(v.VolumeId), tagsOf(v.Tags)["bake"]
		if running(bake) {
			r.Running = append(r.Running, id)
			continue
		}
		r.Volumes = append(r.Volumes, id)
		if dryRun {
			continue
		}
		if len(v.Attachments) > 0 {
			if err := c.DetachVolume(ctx, id); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := c.DeleteVolume(ctx, id); err != nil && !errors.Is(err, plugin.ErrNotFound) { // gone meanwhile
			errs = append(errs, err)
		}
	}
	snaps, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("tag:host"), Values: []string{h.InstanceID}},
		{Name: aws.String("tag-key"), Values: []string{"bake"}},
	}})
	if err != nil {
		return r, errors.Join(append(errs, apiErr("DescribeSnapshots", err))...)
	}
	for _, s := range snaps.Snapshots {
		id, bake := aws.ToString(s.SnapshotId), tagsOf(s.Tags)["bake"]
		if running(bake) {
			r.Running = append(r.Running, id)
			continue
		}
		used, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{
			{Name: aws.String("block-device-mapping.snapshot-id"), Values: []string{id}},
		}})
		if err != nil {
			errs = append(errs, apiErr("DescribeImages", err))
			continue
		}
		if len(used.Images) > 0 {
			continue
		}
		r.Snapshots = append(r.Snapshots, id)
		if !dryRun {
			if err := c.DeleteSnapshot(ctx, id); err != nil && !errors.Is(err, plugin.ErrNotFound) { // gone meanwhile
				errs = append(errs, err)
			}
		}
	}
	return r, errors.Join(errs...)
}
