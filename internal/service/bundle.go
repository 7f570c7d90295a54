package service

import (
	"context"
	"fmt"
	"github.com/aminator-go/aminator/internal/engine/imageref"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// BundleFiles name the PEM files a bundle is made with.
type BundleFiles struct {
	Cert       string // the user's certificate
	PrivateKey string // the user's private key (read, never copied or logged)
	EC2Cert    string // EC2's certificate (default: the region's partition's, built in)
}

// RawDiskSource is what reading an image's disk needs of a cloud: its
// images and their snapshots' data on this host (the local cloud's).
type RawDiskSource interface {
	imageref.Finder
	plugin.DiskFiles
}

// Bundle writes the S3 bundle (EC2 AMI tools format) of the image ref
// names into dir. The image's disk is restored beside the store (a
// reflink clone of its blocks where the store has reflinks) only for as
// long as the bundle takes.
func Bundle(ctx context.Context, c RawDiskSource, ref, dir string, files BundleFiles, o s3bundle.Options) (*plugin.Image, *s3bundle.Result, error) {
	if err := o.LoadIdentity(files.Cert, files.PrivateKey, files.EC2Cert); err != nil {
		return nil, nil, err
	}
	im, err := Find(ctx, c, ref)
	if err != nil {
		return nil, nil, err
	}
	res, err := WithRawDisk(ctx, c, im, func(disk string) (*s3bundle.Result, error) {
		return s3bundle.Bundle(ctx, disk, dir, ImageBundleOptions(im, o))
	})
	return im, res, err
}

// ImageBundleOptions completes o from the image: its name (made safe),
// architecture, and a paravirtual image's kernel and ramdisk.
func ImageBundleOptions(im *plugin.Image, o s3bundle.Options) s3bundle.Options {
	if o.Name == "" {
		o.Name = s3bundle.SafeName(im.Name)
	}
	if o.Arch == "" {
		o.Arch = im.Architecture
	}
	if im.VirtualizationType == "paravirtual" {
		o.KernelID, o.RamdiskID = im.KernelID, im.RamdiskID
	}
	return o
}

// WithRawDisk restores the image's root disk into the cloud's scratch
// directory (held as a running job's meanwhile), runs fn on it and
// removes it.
func WithRawDisk[T any](ctx context.Context, c plugin.DiskFiles, im *plugin.Image, fn func(disk string) (T, error)) (T, error) {
	var zero T
	snap, err := RootSnapshot(im)
	if err != nil {
		return zero, err
	}
	tmp, release, err := c.Scratch(ctx)
	if err != nil {
		return zero, err
	}
	defer release()
	disk := filepath.Join(tmp, fmt.Sprintf("bundle-%s-%d.img", im.ID, os.Getpid()))
	defer os.Remove(disk)
	if err := c.RestoreSnapshot(ctx, snap, disk); err != nil {
		return zero, err
	}
	return fn(disk)
}
