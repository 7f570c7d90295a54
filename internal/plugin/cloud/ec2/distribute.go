package ec2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Distribute shares and deprecates the image as asked, and copies it to
// other regions in parallel (tags copied, each copy encrypted with its
// region's KMS key when given, then shared and deprecated like the
// original). It returns the image in every region, its own first.
//
// A copy carries owner.Copying and owner.CopyHost while its bake (d.Job)
// makes it: they are set as the copy is made (CopyImage's
// TagSpecifications) and again at once (moto ignores those), and removed
// when the whole distribution succeeded.
func (c *Cloud) Distribute(ctx context.Context, im *plugin.Image, d plugin.Distribution) ([]plugin.RegionImage, error) {
	if err := c.shareAndDeprecate(ctx, c.ec2, im.ID, snapshotsOf(im), d); err != nil {
		return nil, err
	}
	out := []plugin.RegionImage{{Region: c.region, ImageID: im.ID}}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, region := range d.CopyTo {
		if region == c.region {
			continue
		}
		wg.Add(1)
		go func(region string) {
			defer wg.Done()
			id, err := c.copyTo(ctx, im, region, d)
			mu.Lock()
			defer mu.Unlock()
			if id != "" {
				out = append(out, plugin.RegionImage{Region: region, ImageID: id})
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("copy to %s: %w", region, err))
			}
		}(region)
	}
	wg.Wait()
	if len(errs) > 0 {
		// The bake fails and its image is deregistered: so are its copies.
		for _, ri := range out[1:] {
			if err := c.removeCopy(context.WithoutCancel(ctx), ri); err != nil {
				errs = append(errs, err)
			}
		}
		return out[:1], errors.Join(errs...)
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Region < out[1+j].Region })
	for _, ri := range out[1:] { // done: the copies are no longer a bake's leftovers
		if _, err := c.regional(ri.Region).DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{ri.ImageID},
			Tags: []types.Tag{{Key: aws.String(owner.Copying)}, {Key: aws.String(owner.CopyHost)}}}); err != nil {
			return out, fmt.Errorf("copy to %s: %w", ri.Region, apiErr("DeleteTags", err))
		}
	}
	return out, nil
}

// copyTags are the tags a copy carries while it is made; none when the
// distribution names no job.
func (c *Cloud) copyTags(ctx context.Context, d plugin.Distribution) (plugin.Tags, error) {
	if d.Job == "" {
		return nil, nil
	}
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	return plugin.Tags{owner.Copying: d.Job, owner.CopyHost: h.InstanceID}, nil
}

// removeCopy deregisters a copy and deletes its snapshots.
func (c *Cloud) removeCopy(ctx context.Context, ri plugin.RegionImage) error {
	client := c.regional(ri.Region)
	var snaps []string
	if d, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ri.ImageID}}); err == nil && len(d.Images) > 0 {
		snaps = snapshotsOf(fromImage(d.Images[0]))
	}
	if _, err := client.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ri.ImageID)}); err != nil {
		return fmt.Errorf("remove copy %s in %s: %w", ri.ImageID, ri.Region, apiErr("DeregisterImage", err))
	}
	for _, s := range snaps {
		client.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)})
	}
	c.log.Info("removed copy", "region", ri.Region, "id", ri.ImageID)
	return nil
}

func snapshotsOf(im *plugin.Image) []string {
	var out []string
	for _, b := range im.BlockDevices {
		if b.SnapshotID != "" {
			out = append(out, b.SnapshotID)
		}
	}
	return out
}

func (c *Cloud) regional(region string) *ec2.Client {
	return ec2.NewFromConfig(c.cfg, func(o *ec2.Options) { o.Region = region })
}

func (c *Cloud) copyTo(ctx context.Context, im *plugin.Image, region string, d plugin.Distribution) (string, error) {
	client := c.regional(region)
	mark, err := c.copyTags(ctx, d)
	if err != nil {
		return "", err
	}
	in := &ec2.CopyImageInput{SourceImageId: aws.String(im.ID), SourceRegion: aws.String(c.region), Name: aws.String(im.Name),
		Description: aws.String(im.Description), CopyImageTags: aws.Bool(true)}
	if mark != nil {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: toTags(mark)},
			{ResourceType: types.ResourceTypeSnapshot, Tags: toTags(mark)}}
	}
	if key := d.KMSKeys[region]; key != "" {
		in.Encrypted, in.KmsKeyId = aws.Bool(true), aws.String(key)
	}
	out, err := client.CopyImage(ctx, in)
	if err != nil {
		return "", apiErr("CopyImage", err)
	}
	id := aws.ToString(out.ImageId)
	if mark != nil {
		if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(mark)}); err != nil {
			return id, apiErr("CreateTags", err)
		}
	}
	c.log.Info("copying image", "region", region, "id", id)
	w := ec2.NewImageAvailableWaiter(client, func(o *ec2.ImageAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
	waited := progress.Wait(ctx, "copying to "+region, c.waitOpts())
	err = w.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}, c.waitOpts())
	waited()
	if err != nil {
		return id, fmt.Errorf("copy %s in %s did not become available: %w", id, region, err)
	}
	// Tags again, explicitly: not every implementation honours CopyImageTags.
	if len(im.Tags) > 0 {
		if _, err := client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(im.Tags)}); err != nil {
			return id, apiErr("CreateTags", err)
		}
	}
	copied, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return id, apiErr("DescribeImages", err)
	}
	var snaps []string
	if len(copied.Images) > 0 {
		snaps = snapshotsOf(fromImage(copied.Images[0]))
	}
	return id, c.shareAndDeprecate(ctx, client, id, snaps, d)
}

func (c *Cloud) shareAndDeprecate(ctx context.Context, client *ec2.Client, id string, snaps []string, d plugin.Distribution) error {
	var perms []types.LaunchPermission
	for _, a := range d.ShareWith {
		perms = append(perms, types.LaunchPermission{UserId: aws.String(a)})
	}
	for _, o := range d.OrgARNs {
		perms = append(perms, types.LaunchPermission{OrganizationArn: aws.String(o)})
	}
	for _, o := range d.OUARNs {
		perms = append(perms, types.LaunchPermission{OrganizationalUnitArn: aws.String(o)})
	}
	if len(perms) > 0 {
		if _, err := client.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &types.LaunchPermissionModifications{Add: perms}}); err != nil {
			return apiErr("ModifyImageAttribute", err)
		}
	}
	if len(d.ShareWith) > 0 {
		for _, s := range snaps {
			if _, err := client.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(s),
				Attribute: types.SnapshotAttributeNameCreateVolumePermission, OperationType: types.OperationTypeAdd, UserIds: d.ShareWith}); err != nil {
				return apiErr("ModifySnapshotAttribute", err)
			}
		}
	}
	if !d.DeprecateAt.IsZero() {
		if _, err := client.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(id), DeprecateAt: aws.Time(d.DeprecateAt)}); err != nil {
			return apiErr("EnableImageDeprecation", err)
		}
	}
	return nil
}

var _ plugin.Distributor = (*Cloud)(nil)
