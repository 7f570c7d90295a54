package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// bundleFlags are the settings of an S3 bundle, shared by bundle and push --store-type s3.
func bundleFlags(fs *pflag.FlagSet, files *service.BundleFiles, o *s3bundle.Options) {
	fs.StringVar(&files.Cert, "cert", "", "the user's X.509 certificate (PEM) the bundle's key is encrypted for")
	fs.StringVar(&files.PrivateKey, "privatekey", "", "the user's RSA private key (PEM) that signs the manifest")
	fs.StringVar(&files.EC2Cert, "ec2cert", "", "EC2's certificate (default: the built-in one of the region's partition)")
	fs.StringVar(&o.Account, "account", "", "the AWS account number the bundle belongs to")
	fs.IntVar(&o.Level, "level", s3bundle.DefaultLevel, "gzip level 1-9 (the AMI tools use 9)")
}

func (a *app) bundleCommand() *cobra.Command {
	var files service.BundleFiles
	var o s3bundle.Options
	dir := "."
	cmd := &cobra.Command{
		Use:   "bundle IMAGE",
		Short: "Write an image as an S3 bundle in the EC2 AMI tools' format (encrypted, signed parts and a manifest)",
		Long: `Write the root disk of a local image as the bundle of an S3-backed
(instance-store) AMI, as ec2-bundle-image does: tar, gzip and AES-128-CBC
in 10 MiB parts, and NAME.manifest.xml with the key encrypted for your
certificate and EC2's, signed with your private key. ec2-unbundle (or
EC2, after an upload) restores the exact disk. It is also a portable,
encrypted, integrity-checked export.`,
		Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				disks, err := capability[plugin.DiskFiles](t, "disk files on this host to bundle")
				if err != nil {
					return err
				}
				if o.Region == "" {
					o.Region, _ = cmd.Flags().GetString("region")
				}
				im, res, err := service.Bundle(ctx, struct {
					plugin.ImageFinder
					plugin.DiskFiles
				}{t.cloud, disks}, args[0], dir, files, o)
				if err != nil {
					return err
				}
				m := res.Manifest
				return a.print(map[string]any{"image": im.ID, "manifest": res.ManifestPath, "parts": m.Parts,
					"size": m.Size, "bundled_size": m.Bundled, "digest": m.Digest}, func() {
					fmt.Fprintf(a.stdout, "%s bundled: %s (%d parts, %d bytes of %d)\n", im.ID, res.ManifestPath, len(m.Parts), m.Bundled, m.Size)
				})
			})
		},
	}
	bundleFlags(cmd.Flags(), &files, &o)
	cmd.Flags().StringVarP(&dir, "destination", "d", ".", "directory to write the parts and the manifest into")
	return cmd
}

// pushS3Flags are push's settings for --store-type s3.
type pushS3Flags struct {
	files  service.BundleFiles
	bundle s3bundle.Options
	bucket string
	acl    string
}

func (f *pushS3Flags) flags(fs *pflag.FlagSet) {
	bundleFlags(fs, &f.files, &f.bundle)
	fs.StringVar(&f.bucket, "bucket", "", "with --store-type s3: the bucket (BUCKET[/PREFIX]) the bundle goes to")
	fs.StringVar(&f.acl, "acl", "aws-exec-read", "with --store-type s3: the canned ACL of the bundle's objects")
}

// pushS3 pushes a local image as an S3-backed image.
func (a *app) pushS3(cfg *config.Config, ref string, o push.Options, f pushS3Flags) error {
	ctx, stop := service.SignalContext()
	defer stop()
	log := a.logger(cfg.Context.Debug)
	so := push.S3Options{Bucket: f.bucket, Bundle: f.bundle, ACL: f.acl, Workers: o.Workers, Name: o.Name, Tags: o.Tags, Log: log,
		AllowNoLoader: o.AllowNoLoader}
	im, res, err := service.PushS3LocalToEC2(ctx, cfg, ref, f.files, so)
	if err != nil {
		return err
	}
	return a.print(res, func() {
		log.Info("pushed", "image", im.ID, "ami", res.ImageID, "manifest", res.ManifestLocation, "region", res.Region,
			"parts", res.Parts, "sent", res.PartsSent, "took", res.Duration.Round(time.Millisecond))
		fmt.Fprintln(a.stdout, res.ImageID)
	})
}

// gcBundles collects the unused S3 bundles of a bucket.
func (a *app) gcBundles(cmd *cobra.Command, bucket string, dry bool) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	ctx, stop := service.SignalContext()
	defer stop()
	p, err := service.PlanEC2BundleGC(ctx, cfg, bucket, a.logger(cfg.Context.Debug))
	if err != nil {
		return err
	}
	return a.runGC(ctx, p, dry)
}
