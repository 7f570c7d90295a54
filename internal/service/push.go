package service

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
)

// The functions in this file span two clouds (a local image sent to EC2)
// or reach past the cloud API (EC2's AWS configuration, for S3): the
// only ones in the service that take or open a concrete cloud, and their
// names say which.

// openLocal opens the local cloud, whatever the environment.
func openLocal(ctx context.Context, cfg *config.Config, log *slog.Logger) (*local.Cloud, error) {
	c, err := OpenCloud(ctx, cfg, "local", log)
	if err != nil {
		return nil, err
	}
	return c.(*local.Cloud), nil
}

// openEC2 opens the EC2 cloud in the configured region, whatever the
// environment.
func openEC2(ctx context.Context, cfg *config.Config, log *slog.Logger) (*ec2cloud.Cloud, error) {
	c, err := OpenCloud(ctx, cfg, "ec2", log)
	if err != nil {
		return nil, err
	}
	return c.(*ec2cloud.Cloud), nil
}

// localToEC2 opens both clouds, finds the local image ref names and runs
// fn on them: the shape of every job that sends a local image to EC2.
func localToEC2[T any](ctx context.Context, cfg *config.Config, ref string, log *slog.Logger,
	fn func(lc *local.Cloud, ec *ec2cloud.Cloud, im *plugin.Image) (T, error)) (*plugin.Image, T, error) {
	var zero T
	lc, err := openLocal(ctx, cfg, log)
	if err != nil {
		return nil, zero, err
	}
	defer lc.Close()
	ec, err := openEC2(ctx, cfg, log)
	if err != nil {
		return nil, zero, err
	}
	im, err := Find(ctx, lc, ref)
	if err != nil {
		return nil, zero, err
	}
	res, err := fn(lc, ec, im)
	return im, res, err
}

// PushLocalToEC2 sends the image of the local cloud that ref names to
// EC2, in the configured region, and registers it there (see push.Push).
// It returns the local image and what the push made.
func PushLocalToEC2(ctx context.Context, cfg *config.Config, ref string, o push.Options) (*plugin.Image, *push.Result, error) {
	return localToEC2(ctx, cfg, ref, o.Log, func(lc *local.Cloud, ec *ec2cloud.Cloud, im *plugin.Image) (*push.Result, error) {
		o.LockDir = cfg.LockDir
		return push.Push(ctx, lc, ec, im, o)
	})
}

// PushS3LocalToEC2 sends the local image ref names to EC2 as an S3-backed
// image: its disk bundled (files name the identity), uploaded to o.Bucket
// and registered.
func PushS3LocalToEC2(ctx context.Context, cfg *config.Config, ref string, files BundleFiles, o push.S3Options) (*plugin.Image, *push.S3Result, error) {
	if err := o.Bundle.LoadIdentity(files.Cert, files.PrivateKey, files.EC2Cert); err != nil {
		return nil, nil, err
	}
	if o.Bucket == "" {
		return nil, nil, errors.New("push --store-type s3 needs --bucket")
	}
	return localToEC2(ctx, cfg, ref, o.Log, func(lc *local.Cloud, ec *ec2cloud.Cloud, im *plugin.Image) (*push.S3Result, error) {
		o.Scratch, o.LockDir = filepath.Join(lc.Dir(), "tmp"), lc.LockDir()
		return WithRawDisk(ctx, lc, im, func(disk string) (*push.S3Result, error) {
			return push.PushS3(ctx, ec, im, disk, o)
		})
	})
}

// PlanEC2BundleGC plans the gc of the S3 bundles in bucket (BUCKET[/PREFIX])
// that no image of the EC2 account in the region uses.
func PlanEC2BundleGC(ctx context.Context, cfg *config.Config, bucket string, log *slog.Logger) (*bundlestore.GCPlan, error) {
	ec, err := openEC2(ctx, cfg, log)
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
