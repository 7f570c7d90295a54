package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/sys/flock"
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
	// Held while the disk and the parts are in tmp/: the local gc counts it
	// as a running job and leaves tmp/ alone.
	lockPath := filepath.Join(c.LockDir(), fmt.Sprintf("bundle-job-%d.lock", os.Getpid()))
	lock, err := flock.Exclusive(ctx, lockPath)
	if err != nil {
		return zero, err
	}
	defer func() { os.Remove(lockPath); lock.Unlock() }()
	disk := filepath.Join(tmp, fmt.Sprintf("bundle-%s-%d.img", im.ID, os.Getpid()))
	defer os.Remove(disk)
	if err := c.Store().Restore(ctx, snap, disk); err != nil {
		return zero, err
	}
	return fn(disk)
}

// PushS3 sends the local image ref to EC2 as an S3-backed image: its disk
// bundled (files name the identity), uploaded to o.Bucket and registered.
func PushS3(ctx context.Context, cfg *config.Config, lc *local.Cloud, ref string, files BundleFiles, o push.S3Options) (*plugin.Image, *push.S3Result, error) {
	if err := o.Bundle.LoadIdentity(files.Cert, files.PrivateKey, files.EC2Cert); err != nil {
		return nil, nil, err
	}
	if o.Bucket == "" {
		return nil, nil, errors.New("push --store-type s3 needs --bucket")
	}
	ec, err := OpenEC2(ctx, cfg, o.Log)
	if err != nil {
		return nil, nil, err
	}
	im, err := Find(ctx, lc, ref)
	if err != nil {
		return nil, nil, err
	}
	o.Scratch, o.LockDir = filepath.Join(lc.Dir(), "tmp"), lc.LockDir()
	res, err := WithRawDisk(ctx, lc, im, func(disk string) (*push.S3Result, error) {
		return push.PushS3(ctx, ec, im, disk, o)
	})
	return im, res, err
}

// PlanBundleGC plans the gc of the S3 bundles in bucket (BUCKET[/PREFIX])
// that no image of the account in the region uses.
func PlanBundleGC(ctx context.Context, cfg *config.Config, bucket string, log *slog.Logger) (*bundlestore.GCPlan, error) {
	ec, err := OpenEC2(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := bundlestore.New(ec.AWSConfig(), bucket, bundlestore.Options{LockDir: cfg.LockDir, Log: log})
	if err != nil {
		return nil, err
	}
	return st.Plan(ctx, func(ctx context.Context) (func(string) bool, error) {
		locs, err := ec.BundleLocations(ctx, bundlestore.TagLocation)
		if err != nil {
			return nil, err
		}
		return func(l string) bool { return locs[l] }, nil
	})
}
