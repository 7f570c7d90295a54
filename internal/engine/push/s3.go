package push

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// S3Options are a push as an S3-backed (instance-store) image.
type S3Options struct {
	// Bucket is BUCKET[/PREFIX] the bundle goes to.
	Bucket string
	// Bundle says for whom the bundle is made (identity, account, level).
	Bundle  s3bundle.Options
	ACL     string
	Workers int
	// Name of the AMI (default: the local image's name with -s3).
	Name string
	Tags plugin.Tags
	// Scratch is where the parts are written; LockDir holds the upload's flock.
	Scratch, LockDir string
	Log              *slog.Logger
	// AllowNoLoader registers a disk with no boot loader with no boot
	// mode, instead of refusing it (as Options.AllowNoLoader).
	AllowNoLoader bool
}

// S3Result is an instance-store image pushed.
type S3Result struct {
	Region           string        `json:"region"`
	ImageID          string        `json:"image_id"`
	ManifestLocation string        `json:"manifest_location"`
	Parts            int           `json:"parts"`
	PartsSent        int           `json:"parts_sent"`
	BundledBytes     int64         `json:"bundled_bytes"`
	Duration         time.Duration `json:"duration_ns"`
}

// The original Aminator's instance-store block device mapping.
var (
	s3Root       = "/dev/sda1"
	s3Ephemerals = []string{"/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde"}
)

// PushS3 bundles disk, the raw root disk of the local image im, uploads
// the bundle and registers an instance-store image from it. When the
// registration fails the bundle is removed.
func PushS3(ctx context.Context, ec *ec2cloud.Cloud, im *plugin.Image, disk string, o S3Options) (*S3Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = im.Name + "-s3"
	}
	mode, err := s3BootMode(ctx, im, disk, o)
	if err != nil {
		return nil, err
	}
	st, err := bundlestore.New(ec.AWSConfig(), o.Bucket, bundlestore.Options{ACL: o.ACL, Workers: o.Workers, Log: o.Log, LockDir: o.LockDir})
	if err != nil {
		return nil, err
	}
	b := o.Bundle
	b.Name, b.Region = s3bundle.SafeName(o.Name), ec.Region()
	b.BlockDevices = bundlestore.BundleDevices(s3Root, s3Ephemerals)
	if b.Arch == "" {
		b.Arch = im.Architecture
	}
	if im.VirtualizationType == "paravirtual" {
		b.KernelID, b.RamdiskID = im.KernelID, im.RamdiskID
	}
	pub, err := st.Publish(ctx, disk, o.Scratch, b)
	if err != nil {
		return nil, err
	}
	req := bundlestore.InstanceStoreRequest(s3Request(im, o), pub.ManifestLocation, s3Root, s3Ephemerals)
	req.BootMode = mode
	ami, err := ec.RegisterImage(ctx, req)
	if err != nil {
		if derr := st.DeleteNamed(context.WithoutCancel(ctx), b.Name); derr != nil {
			o.Log.Warn("could not remove the bundle of the failed registration; gc will", "err", derr)
		}
		return nil, fmt.Errorf("register %s: %w", pub.ManifestLocation, err)
	}
	return &S3Result{Region: ec.Region(), ImageID: ami.ID, ManifestLocation: pub.ManifestLocation, Parts: pub.Parts,
		PartsSent: pub.PartsSent, BundledBytes: pub.Bundled, Duration: time.Since(start)}, nil
}

// s3BootMode is the boot mode to register an hvm image with, from the
// loaders on its disk (chooseMode); a paravirtual image's kernel is
// booted by EC2's PV-GRUB, whatever the disk's loaders.
func s3BootMode(ctx context.Context, im *plugin.Image, disk string, o S3Options) (string, error) {
	if im.VirtualizationType == "paravirtual" {
		return "", nil
	}
	l, err := bootdisk.Detect(ctx, disk)
	return chooseMode(im, l, err, o.AllowNoLoader, o.Log)
}

// s3Request is the image to register: the local image's description,
// architecture, virtualization (a paravirtual image keeps its kernel and
// ramdisk) and tags (but its lineage), and the caller's tags.
func s3Request(im *plugin.Image, o S3Options) plugin.ImageRequest {
	tags := plugin.Tags{"aminator:local_image": im.ID}
	for k, v := range im.Tags {
		if k != "lineage" {
			tags[k] = v
		}
	}
	for k, v := range o.Tags {
		tags[k] = v
	}
	r := plugin.ImageRequest{Name: o.Name, Description: im.Description, Architecture: im.Architecture,
		VirtualizationType: im.VirtualizationType, Tags: tags}
	if r.VirtualizationType == "" {
		r.VirtualizationType = "hvm"
	}
	if r.VirtualizationType == "paravirtual" {
		r.KernelID, r.RamdiskID = im.KernelID, im.RamdiskID
	}
	return r
}
