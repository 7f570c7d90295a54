package ec2

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/aminator-go/aminator/internal/plugin"
)

func fromImage(im types.Image) *plugin.Image {
	out := &plugin.Image{
		ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), Description: aws.ToString(im.Description),
		Architecture: string(im.Architecture), VirtualizationType: string(im.VirtualizationType),
		RootDeviceName: aws.ToString(im.RootDeviceName), RootDeviceType: string(im.RootDeviceType),
		EnaSupport: aws.ToBool(im.EnaSupport), SriovNetSupport: aws.ToString(im.SriovNetSupport) == "simple",
		BootMode: string(im.BootMode), KernelID: aws.ToString(im.KernelId), RamdiskID: aws.ToString(im.RamdiskId),
		OwnerID: aws.ToString(im.OwnerId), State: string(im.State), Tags: tagsOf(im.Tags),
	}
	if t, err := time.Parse(time.RFC3339, aws.ToString(im.CreationDate)); err == nil {
		out.CreatedAt = t
	}
	for _, b := range im.BlockDeviceMappings {
		m := plugin.BlockDeviceMapping{DeviceName: aws.ToString(b.DeviceName), VirtualName: aws.ToString(b.VirtualName)}
		if b.Ebs != nil {
			m.SnapshotID = aws.ToString(b.Ebs.SnapshotId)
			m.VolumeSizeGiB = int64(aws.ToInt32(b.Ebs.VolumeSize))
			m.VolumeType = string(b.Ebs.VolumeType)
			m.DeleteOnTermination = aws.ToBool(b.Ebs.DeleteOnTermination)
		}
		out.BlockDevices = append(out.BlockDevices, m)
	}
	return out
}

// Image finds an image by id, or by exact name among the configured owners
// (the newest, with a warning when several match).
func (c *Cloud) Image(ctx context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	in := &ec2.DescribeImagesInput{}
	what := ""
	switch {
	case q.ID != "":
		in.ImageIds = []string{q.ID}
		what = "id " + q.ID
	case q.Name != "":
		in.Owners = c.s.Owners
		in.Filters = []types.Filter{{Name: aws.String("name"), Values: []string{q.Name}}}
		what = "name " + q.Name
	default:
		return nil, errors.New("image: give an id or a name")
	}
	out, err := c.ec2.DescribeImages(ctx, in)
	if err != nil {
		if errors.Is(apiErr("DescribeImages", err), plugin.ErrNotFound) {
			return nil, fmt.Errorf("no image with %s in %s: %w", what, c.region, plugin.ErrNotFound)
		}
		return nil, apiErr("DescribeImages", err)
	}
	if len(out.Images) == 0 {
		return nil, fmt.Errorf("no image with %s in %s (owners %v): %w", what, c.region, c.s.Owners, plugin.ErrNotFound)
	}
	ims := make([]*plugin.Image, 0, len(out.Images))
	for _, im := range out.Images {
		ims = append(ims, fromImage(im))
	}
	sort.Slice(ims, func(i, j int) bool { return ims[i].CreatedAt.After(ims[j].CreatedAt) })
	if len(ims) > 1 {
		var idl []string
		for _, im := range ims {
			idl = append(idl, im.ID)
		}
		c.log.Warn("several images match; using the newest", "name", q.Name, "chosen", ims[0].ID, "all", strings.Join(idl, ","))
	}
	im := ims[0]
	if im.RootDeviceType == "instance-store" {
		return nil, fmt.Errorf("image %s has an instance-store root; aminator bakes EBS-backed images only", im.ID)
	}
	return im, nil
}

// FindImages lists this account's images carrying all the tags, newest first.
func (c *Cloud) FindImages(ctx context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}}
	for k, v := range tags {
		in.Filters = append(in.Filters, tagIs(k, v))
	}
	out, err := c.ec2.DescribeImages(ctx, in)
	if err != nil {
		return nil, apiErr("DescribeImages", err)
	}
	var ims []*plugin.Image
	for _, im := range out.Images {
		ims = append(ims, fromImage(im))
	}
	sort.Slice(ims, func(i, j int) bool { return ims[i].CreatedAt.After(ims[j].CreatedAt) })
	return ims, nil
}

// BootsThroughFirmware says EC2 starts an instance through legacy BIOS or
// UEFI firmware and the disk's own boot loader (plugin.FirmwareBooter).
func (c *Cloud) BootsThroughFirmware() bool { return true }

// RegisterInput builds the RegisterImage request (separate, so tests can
// check exactly what is sent: moto ignores most of it).
func RegisterInput(r plugin.ImageRequest) *ec2.RegisterImageInput {
	in := &ec2.RegisterImageInput{
		Name: aws.String(r.Name), Description: aws.String(r.Description),
		Architecture: types.ArchitectureValues(r.Architecture), RootDeviceName: aws.String(r.RootDeviceName),
		VirtualizationType: aws.String(r.VirtualizationType),
	}
	if r.VirtualizationType == "" {
		in.VirtualizationType = aws.String("hvm")
	}
	if r.ImageLocation != "" {
		in.ImageLocation = aws.String(r.ImageLocation) // an instance-store image, from its S3 manifest
	}
	if aws.ToString(in.VirtualizationType) == "paravirtual" {
		if r.KernelID != "" {
			in.KernelId = aws.String(r.KernelID)
		}
		if r.RamdiskID != "" {
			in.RamdiskId = aws.String(r.RamdiskID)
		}
	} else {
		if r.EnaSupport {
			in.EnaSupport = aws.Bool(true)
		}
		if r.SriovNetSupport {
			in.SriovNetSupport = aws.String("simple")
		}
	}
	if r.BootMode != "" {
		in.BootMode = types.BootModeValues(r.BootMode)
	}
	if r.TPMSupport {
		in.TpmSupport = types.TpmSupportValuesV20
	}
	if r.IMDSv2Required {
		in.ImdsSupport = types.ImdsSupportValuesV20
	}
	for _, b := range r.BlockDevices {
		m := types.BlockDeviceMapping{DeviceName: aws.String(b.DeviceName)}
		if b.VirtualName != "" {
			m.VirtualName = aws.String(b.VirtualName)
		} else {
			e := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(b.DeleteOnTermination)}
			if b.SnapshotID != "" {
				e.SnapshotId = aws.String(b.SnapshotID)
			}
			if b.VolumeSizeGiB > 0 {
				e.VolumeSize = aws.Int32(int32(b.VolumeSizeGiB))
			}
			if b.VolumeType != "" && b.VolumeType != "local" {
				e.VolumeType = types.VolumeType(b.VolumeType)
			}
			m.Ebs = e
		}
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, m)
	}
	return in
}

// RegisterImage registers the image, tags it and waits until it is
// available. A taken name is an error, or, with duplicate_names: number,
// retried as NAME-1, NAME-2, ... as the original tool did.
func (c *Cloud) RegisterImage(ctx context.Context, r plugin.ImageRequest) (*plugin.Image, error) {
	base := r.Name
	for n := 0; ; n++ {
		if n > 0 {
			r.Name = fmt.Sprintf("%s-%d", base, n)
		}
		taken, err := c.nameTaken(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		if taken {
			if c.s.DuplicateNames == "number" && n < 100 {
				continue
			}
			return nil, fmt.Errorf("register image: the name %q is taken in %s; pick another with -n or -s: %w", r.Name, c.region, plugin.ErrExists)
		}
		in := RegisterInput(r)
		// Tagged as it is created: a bake killed right after RegisterImage
		// leaves no untagged image that gc could not attribute.
		in.TagSpecifications = tagSpec(types.ResourceTypeImage, r.Tags)
		out, err := c.ec2.RegisterImage(ctx, in)
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "InvalidAMIName.Duplicate" {
				if c.s.DuplicateNames == "number" && n < 100 {
					continue
				}
				return nil, fmt.Errorf("register image: the name %q is taken: %w", r.Name, plugin.ErrExists)
			}
			return nil, apiErr("RegisterImage", err)
		}
		id := aws.ToString(out.ImageId)
		fail := func(err error) (*plugin.Image, error) {
			c.ec2.DeregisterImage(context.WithoutCancel(ctx), &ec2.DeregisterImageInput{ImageId: aws.String(id)})
			return nil, err
		}
		w := ec2.NewImageAvailableWaiter(c.ec2, func(o *ec2.ImageAvailableWaiterOptions) { o.MinDelay = c.minDelay() })
		if err := w.Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}, c.waitOpts()); err != nil {
			return fail(fmt.Errorf("image %s did not become available: %w", id, err))
		}
		im, err := c.Image(ctx, plugin.ImageQuery{ID: id})
		if err != nil {
			return fail(err)
		}
		if len(r.Tags) > 0 && len(im.Tags) < len(r.Tags) { // an API that ignores TagSpecifications (moto)
			if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: toTags(r.Tags)}); err != nil {
				return fail(apiErr("CreateTags", err))
			}
			im.Tags = r.Tags
		}
		return im, nil
	}
}

func (c *Cloud) nameTaken(ctx context.Context, name string) (bool, error) {
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	if err != nil {
		return false, apiErr("DescribeImages", err)
	}
	return len(out.Images) > 0, nil
}

// DeregisterImage deregisters an image.
func (c *Cloud) DeregisterImage(ctx context.Context, id string) error {
	if _, err := c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil {
		return apiErr("DeregisterImage", err)
	}
	return nil
}
