package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/cloud/local"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/s3bundle"
)

// BundleFiles name the PEM files a bundle is made with.
type BundleFiles struct {
	Cert       string // the user's certificate
	PrivateKey string // the user's private key (read, never copied or logged)
	EC2Cert    string // EC2's certificate (default: the region's partition's, built in)
}

// BundleLocal writes the S3 bundle (EC2 AMI tools format) of the local
// image ref into dir. The image's disk is restored beside the store (a
// reflink clone of its blocks where the store has reflinks) only for as
// long as the bundle takes.
func BundleLocal(ctx context.Context, c *local.Cloud, ref, dir string, files BundleFiles, o s3bundle.Options) (*plugin.Image, *s3bundle.Result, error) {
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

// WithRawDisk restores the image's root disk into the state directory's
// tmp/, runs fn on it and removes it.
func WithRawDisk[T any](ctx context.Context, c *local.Cloud, im *plugin.Image, fn func(disk string) (T, error)) (T, error) {
	var zero T
	snap, err := RootSnapshot(im)
	if err != nil {
		return zero, err
	}
	tmp := filepath.Join(c.Dir(), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return zero, err
	}
	disk := filepath.Join(tmp, fmt.Sprintf("bundle-%s-%d.img", im.ID, os.Getpid()))
	defer os.Remove(disk)
	if err := c.Store().Restore(ctx, snap, disk); err != nil {
		return zero, err
	}
	return fn(disk)
}
