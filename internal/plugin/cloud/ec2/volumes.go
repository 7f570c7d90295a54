package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
)

func fromVolume(v types.Volume) *plugin.Volume {
	out := &plugin.Volume{ID: aws.ToString(v.VolumeId), SnapshotID: aws.ToString(v.SnapshotId), SizeBytes: int64(aws.ToInt32(v.Size)) << 30,
		State: string(v.State), CreatedAt: aws.ToTime(v.CreateTime), Tags: tagsOf(v.Tags)}
	if len(v.Attachments) > 0 {
		out.Device = aws.ToString(v.Attachments[0].Device)
		out.AttachedTo = aws.ToString(v.Attachments[0].InstanceId)
	}
	return out
}

// CreateVolume makes the work volume in this host's availability zone,
// or takes one of this host's pool of the snapshot (see pool.go).
func (c *Cloud) CreateVolume(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	if r.SnapshotID != "" {
		if v, err := c.takePooled(ctx, r); v != nil || err != nil {
			return v, err
		}
	}
	return c.createVolume(ctx, r)
}

// createVolume makes a volume and waits until it is available.
func (c *Cloud) createVolume(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	gib := int32((r.SizeBytes + (1<<30 - 1)) >> 30)
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(h.AvailabilityZone), VolumeType: types.VolumeType(c.volumeType(r.Type)),
		TagSpecifications: tagSpec(types.ResourceTypeVolume, r.Tags)}
	if gib > 0 {
		in.Size = aws.Int32(gib)
	}
	if r.SnapshotID != "" {
		in.SnapshotId = aws.String(r.SnapshotID)
	}
	if c.s.IOPS > 0 {
		in.Iops = aws.Int32(c.s.IOPS)
	}
	if c.s.Throughput > 0 {
		in.Throughput = aws.Int32(c.s.Throughput)
	}
	if c.s.Encrypted || c.s.KMSKeyID != "" {
		in.Encrypted = aws.Bool(true)
		if c.s.KMSKeyID != "" {
			in.KmsKeyId = aws.String(c.s.KMSKeyID)
		}
	}
	out, err := c.ec2.CreateVolume(ctx, in)
	if err != nil {
		return nil, apiErr("CreateVolume", err)
	}
	id := aws.ToString(out.VolumeId)
	w := ec2.NewVolumeAvailableWaiter(c.ec2, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, c.waitOpts()); err != nil {
		c.ec2.DeleteVolume(context.WithoutCancel(ctx), &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
		return nil, fmt.Errorf("volume %s did not become available: %w", id, err)
	}
	v, err := c.Volume(ctx, id)
	if err != nil {
		c.ec2.DeleteVolume(context.WithoutCancel(ctx), &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	}
	return v, err
}

func (c *Cloud) volumeType(t string) string {
	switch t {
	case "", "local":
		return c.s.VolumeType
	}
	return t
}

// Volume describes a volume.
func (c *Cloud) Volume(ctx context.Context, id string) (*plugin.Volume, error) {
	out, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		return nil, apiErr("DescribeVolumes", err)
	}
	if len(out.Volumes) == 0 {
		return nil, fmt.Errorf("no volume %s: %w", id, plugin.ErrNotFound)
	}
	return fromVolume(out.Volumes[0]), nil
}

// AttachVolume attaches the volume to this instance at device and waits
// until EC2 reports the attachment complete.
func (c *Cloud) AttachVolume(ctx context.Context, id, device string) (plugin.Attachment, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return plugin.Attachment{}, err
	}
	if device == "" {
		return plugin.Attachment{}, errors.New("attach: no device name allocated")
	}
	if _, err := c.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(h.InstanceID), Device: aws.String(device)}); err != nil {
		return plugin.Attachment{}, apiErr("AttachVolume", err)
	}
	if err := c.poll(ctx, "attachment of "+id, func(ctx context.Context) (bool, error) {
		v, err := c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil {
			return false, apiErr("DescribeVolumes", err)
		}
		for _, vol := range v.Volumes {
			for _, a := range vol.Attachments {
				if aws.ToString(a.InstanceId) == h.InstanceID && a.State == types.VolumeAttachmentStateAttached {
					return true, nil
				}
			}
		}
		return false, nil
	}); err != nil {
		return plugin.Attachment{}, err
	}
	return plugin.Attachment{VolumeID: id, Device: device}, nil
}

// DetachVolume detaches the volume from this instance (always naming the
// instance) and waits until it is available.
func (c *Cloud) DetachVolume(ctx context.Context, id string) error {
	h, err := c.Host(ctx)
	if err != nil {
		return err
	}
	if _, err := c.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(h.InstanceID)}); err != nil {
		if ae := apiErr("DetachVolume", err); errors.Is(ae, plugin.ErrNotFound) || strings.Contains(err.Error(), "IncorrectState") {
			return nil // already detached
		}
		return apiErr("DetachVolume", err)
	}
	w := ec2.NewVolumeAvailableWaiter(c.ec2, func(o *ec2.VolumeAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, c.waitOpts()); err != nil {
		return fmt.Errorf("volume %s did not detach: %w", id, err)
	}
	return nil
}

// DeleteVolume deletes the volume; a missing one wraps plugin.ErrNotFound.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	_, err := c.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	return apiErr("DeleteVolume", err)
}
