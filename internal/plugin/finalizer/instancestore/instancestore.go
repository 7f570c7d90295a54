// Package instancestore holds the tagging_s3 finalizer of the
// ec2_*_linux_s3 environments: it bundles the provisioned volume in the
// EC2 AMI tools' format (s3bundle), uploads the bundle to a bucket
// (bundlestore) and registers an instance-store image from the manifest,
// with the usual tags. The "snapshot" of the bake is the uploaded bundle,
// named by its manifest location; a bake that fails after it removes the
// bundle, and gc removes the bundles of bakes that were killed.
package instancestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// Settings are the finalizer's (plugins: finalizer.tagging_s3:), those of
// the original Aminator's tagging_s3 and a few more.
type Settings struct {
	Cert       string `yaml:"cert"`        // the user's X.509 certificate (PEM)
	PrivateKey string `yaml:"privatekey"`  // the user's RSA private key (PEM); read, never copied or logged
	Account    string `yaml:"account"`     // the AWS account number
	Bucket     string `yaml:"bucket"`      // BUCKET[/PREFIX] the bundles go to
	ScratchDir string `yaml:"scratch_dir"` // where parts are written before the upload (default STATE_DIR/tmp)
	EC2Cert    string `yaml:"ec2_cert"`    // EC2's certificate (default: built in, by partition)
	ACL        string `yaml:"acl"`         // canned ACL of the objects (default aws-exec-read)
	Level      int    `yaml:"level"`       // gzip level (default 6)
	Workers    int    `yaml:"upload_workers"`
	// RootDevice and EphemeralDevices are the image's block device mapping.
	RootDevice       string   `yaml:"root_device"`
	EphemeralDevices []string `yaml:"ephemeral_devices"`
}

// Defaults are the settings before configuration.
func Defaults() *Settings {
	return &Settings{ACL: "aws-exec-read", Level: s3bundle.DefaultLevel, Workers: 4, RootDevice: "/dev/sda1",
		EphemeralDevices: []string{"/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde"}}
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindFinalizer, Name: "tagging_s3",
		Description: "bundle the volume to S3 and register an instance-store image with tags",
		NewConfig:   func() any { return Defaults() },
		New: func(cfg any, d plugin.Deps) (any, error) {
			return New(cfg.(*Settings), d)
		},
	})
}

// Cloud is what the finalizer needs of its cloud: EC2's.
type Cloud interface {
	plugin.ImageStore
	AWSConfig() aws.Config
	Region() string
}

// S3 is the finalizer.
type S3 struct {
	s       *Settings
	cloud   Cloud
	log     *slog.Logger
	scratch string
	lockDir string
}

// New checks the settings and makes the finalizer.
func New(s *Settings, d plugin.Deps) (*S3, error) {
	c, ok := d.Cloud.(Cloud)
	if !ok {
		return nil, errors.New("finalizer tagging_s3 needs the ec2 cloud")
	}
	var missing []string
	for name, v := range map[string]string{"cert": s.Cert, "privatekey": s.PrivateKey, "account": s.Account, "bucket": s.Bucket} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("finalizer tagging_s3: set %v under plugins: finalizer.tagging_s3:", missing)
	}
	scratch := s.ScratchDir
	if scratch == "" {
		scratch = filepath.Join(d.StateDir, "tmp")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &S3{s: s, cloud: c, log: log, scratch: scratch, lockDir: d.LockDir}, nil
}

// StoreType is "s3": image names end in -s3.
func (f *S3) StoreType() string { return "s3" }

func (f *S3) store(location string) (*bundlestore.Store, error) {
	return bundlestore.New(f.cloud.AWSConfig(), location, bundlestore.Options{ACL: f.s.ACL, Workers: f.s.Workers, Log: f.log, LockDir: f.lockDir})
}

// Snapshot bundles the unmounted volume and uploads the bundle; the
// snapshot's id is the manifest's location.
func (f *S3) Snapshot(ctx context.Context, r plugin.SnapshotVolume) (*plugin.Snapshot, error) {
	if r.Device == "" {
		return nil, errors.New("tagging_s3: the volume's device on this host is unknown")
	}
	o := s3bundle.Options{Name: s3bundle.SafeName(r.ImageName), Account: f.s.Account, Arch: r.Image.Architecture,
		Region: f.cloud.Region(), Level: f.s.Level, BlockDevices: bundlestore.BundleDevices(f.s.RootDevice, f.s.EphemeralDevices)}
	if r.Image.VirtualizationType == "paravirtual" {
		o.KernelID, o.RamdiskID = r.Image.KernelID, r.Image.RamdiskID
	}
	if err := o.LoadIdentity(f.s.Cert, f.s.PrivateKey, f.s.EC2Cert); err != nil {
		return nil, fmt.Errorf("tagging_s3: %w", err)
	}
	st, err := f.store(f.s.Bucket)
	if err != nil {
		return nil, fmt.Errorf("tagging_s3: %w", err)
	}
	start := time.Now()
	pub, err := st.Publish(ctx, r.Device, f.scratch, o)
	if err != nil {
		return nil, fmt.Errorf("tagging_s3: %w", err)
	}
	f.log.Info("bundle uploaded", "manifest", pub.ManifestLocation, "parts", pub.Parts, "bytes", pub.Bundled, "took", time.Since(start).Round(time.Millisecond))
	return &plugin.Snapshot{ID: pub.ManifestLocation, VolumeID: r.Volume.ID, SizeBytes: pub.Manifest.Size,
		Description: "aminator: " + r.ImageName, State: "completed", CreatedAt: time.Now(), Tags: r.Tags}, nil
}

// Register registers an instance-store image from the uploaded manifest.
func (f *S3) Register(ctx context.Context, r plugin.RegisterSnapshot) (*plugin.Image, error) {
	req := bundlestore.InstanceStoreRequest(r.Image, r.Snapshot.ID, f.s.RootDevice, f.s.EphemeralDevices)
	return f.cloud.RegisterImage(ctx, req)
}

// RemoveSnapshot removes an uploaded bundle (a bake failed after it).
func (f *S3) RemoveSnapshot(ctx context.Context, id string) error {
	loc, name, err := bundlestore.SplitLocation(id)
	if err != nil {
		return err
	}
	st, err := f.store(loc)
	if err != nil {
		return err
	}
	return st.DeleteNamed(ctx, name)
}
