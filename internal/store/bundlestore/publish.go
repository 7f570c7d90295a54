package bundlestore

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// TagLocation is the image tag that names the S3 manifest an image was
// registered from (gc keeps the bundles images name, by their
// ImageLocation or this tag).
const TagLocation = "s3_bundle"

// Published is a bundle made and uploaded.
type Published struct {
	*Uploaded
	Manifest *s3bundle.Manifest `json:"-"`
	Parts    int                `json:"parts"`
	Bundled  int64              `json:"bundled_bytes"`
}

// Publish bundles the raw disk (a file or a block device) in a new
// directory under scratch, uploads it and removes the directory. An
// upload that fails removes what it had put in the bucket.
func (s *Store) Publish(ctx context.Context, disk, scratch string, o s3bundle.Options) (*Published, error) {
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(scratch, "bundle-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := s.CheckBucket(ctx); err != nil { // before the bundle's minutes of work
		return nil, err
	}
	res, err := s3bundle.Bundle(ctx, disk, dir, o)
	if err != nil {
		return nil, err
	}
	up, err := s.Upload(ctx, dir, res.Manifest)
	if err != nil {
		if derr := s.DeleteNamed(context.WithoutCancel(ctx), res.Manifest.Name); derr != nil {
			s.o.Log.Warn("could not remove the failed upload's parts; gc will", "err", derr)
		}
		return nil, err
	}
	return &Published{Uploaded: up, Manifest: res.Manifest, Parts: len(res.Manifest.Parts), Bundled: res.Manifest.Bundled}, nil
}

// SplitLocation cuts a manifest location into the store's location
// (BUCKET[/PREFIX]) and the bundle's name.
func SplitLocation(loc string) (store, name string, err error) {
	dir, file := path.Split(loc)
	name, ok := strings.CutSuffix(file, ".manifest.xml")
	if !ok || dir == "" || name == "" {
		return "", "", fmt.Errorf("%q is not an S3 manifest location (BUCKET/NAME.manifest.xml)", loc)
	}
	return strings.TrimSuffix(dir, "/"), name, nil
}

// InstanceStoreRequest turns an image request into an instance-store
// one: registered from the manifest at loc, root at rootDevice, the
// ephemeral devices mapped to ephemeral0..N, tagged with the location.
func InstanceStoreRequest(r plugin.ImageRequest, loc, rootDevice string, ephemerals []string) plugin.ImageRequest {
	r.ImageLocation, r.RootDeviceName = loc, rootDevice
	r.BlockDevices = nil
	for i, d := range ephemerals {
		r.BlockDevices = append(r.BlockDevices, plugin.BlockDeviceMapping{DeviceName: d, VirtualName: fmt.Sprintf("ephemeral%d", i)})
	}
	tags := plugin.Tags{}
	for k, v := range r.Tags {
		tags[k] = v
	}
	tags[TagLocation] = loc
	r.Tags = tags
	return r
}

// BundleDevices is the manifest's block device mapping for an image
// whose root is rootDevice, as the original Aminator passed it to
// ec2-bundle-image (ami=sda1,root=/dev/sda1,ephemeral0=sdb,...).
func BundleDevices(rootDevice string, ephemerals []string) map[string]string {
	m := map[string]string{"ami": strings.TrimPrefix(rootDevice, "/dev/"), "root": rootDevice}
	for i, d := range ephemerals {
		m[fmt.Sprintf("ephemeral%d", i)] = strings.TrimPrefix(d, "/dev/")
	}
	return m
}
