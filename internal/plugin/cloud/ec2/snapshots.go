package ec2

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Snapshot describes a snapshot.
func (c *Cloud) Snapshot(ctx context.Context, id string) (*plugin.Snapshot, error) {
	out, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil {
		return nil, apiErr("DescribeSnapshots", err)
	}
	if len(out.Snapshots) == 0 {
		return nil, fmt.Errorf("no snapshot %s: %w", id, plugin.ErrNotFound)
	}
	return fromSnapshot(out.Snapshots[0]), nil
}

func fromSnapshot(s types.Snapshot) *plugin.Snapshot {
	return &plugin.Snapshot{ID: aws.ToString(s.SnapshotId), VolumeID: aws.ToString(s.VolumeId), SizeBytes: int64(aws.ToInt32(s.VolumeSize)) << 30,
		Description: aws.ToString(s.Description), State: string(s.State), CreatedAt: aws.ToTime(s.StartTime), Tags: tagsOf(s.Tags)}
}

// CreateSnapshot snapshots the volume and waits until it completes,
// logging its progress.
func (c *Cloud) CreateSnapshot(ctx context.Context, r plugin.SnapshotRequest) (*plugin.Snapshot, error) {
	out, err := c.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(r.VolumeID), Description: aws.String(r.Description),
		TagSpecifications: tagSpec(types.ResourceTypeSnapshot, r.Tags)})
	if err != nil {
		return nil, apiErr("CreateSnapshot", err)
	}
	id := aws.ToString(out.SnapshotId)
	last := ""
	bar := progress.Start(ctx, "EC2 snapshot "+id, 100, progress.Count)
	defer bar.Done()
	err = c.poll(ctx, "snapshot "+id, func(ctx context.Context) (bool, error) {
		s, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err != nil {
			return false, apiErr("DescribeSnapshots", err)
		}
		if len(s.Snapshots) == 0 {
			return false, nil
		}
		sn := s.Snapshots[0]
		if p := aws.ToString(sn.Progress); p != last {
			c.log.Debug("snapshot progress", "snapshot", id, "progress", p)
			if n, err := strconv.Atoi(strings.TrimSuffix(p, "%")); err == nil {
				bar.SetCurrent(int64(n))
			}
			last = p
		}
		switch sn.State {
		case types.SnapshotStateCompleted:
			return true, nil
		case types.SnapshotStateError:
			return false, fmt.Errorf("snapshot %s failed: %s", id, aws.ToString(sn.StateMessage))
		}
		return false, nil
	})
	var snap *plugin.Snapshot
	if err == nil {
		snap, err = c.Snapshot(ctx, id)
	}
	if err != nil {
		c.ec2.DeleteSnapshot(context.WithoutCancel(ctx), &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		return nil, err
	}
	return snap, nil
}

// DeleteSnapshot deletes a snapshot; a missing one wraps plugin.ErrNotFound.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	return apiErr("DeleteSnapshot", err)
}
