package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// Find finds the image a user named by id, name or FAMILY:LABEL.
func Find(ctx context.Context, c imageref.Finder, ref string) (*plugin.Image, error) {
	return imageref.Resolve(ctx, c, imageref.Parse(ref))
}

// ImageFilter is the tags `images list` selects by: a family, a channel
// label and a role (each "" for any) and any other tags.
func ImageFilter(family, label, role string, tags plugin.Tags) plugin.Tags {
	filter := plugin.Tags{}
	for k, v := range map[string]string{channels.TagFamily: family, channels.TagChannel: label, channels.TagRole: role} {
		if v != "" {
			filter[k] = v
		}
	}
	for k, v := range tags {
		filter[k] = v
	}
	return filter
}

// RootSnapshot is the snapshot of an image's root device.
func RootSnapshot(im *plugin.Image) (string, error) {
	r := im.Root()
	if r == nil || r.SnapshotID == "" {
		return "", fmt.Errorf("image %s has no root snapshot", im.ID)
	}
	return r.SnapshotID, nil
}

// Remover is what removing an image needs of a cloud.
type Remover interface {
	imageref.Finder
	DeregisterImage(ctx context.Context, id string) error
	DeleteSnapshot(ctx context.Context, id string) error
}

// Removal is what removing one image did.
type Removal struct {
	// Image is the id deregistered ("" when nothing was).
	Image string
	// Snapshots are the snapshots deleted, in the image's device order.
	Snapshots []string
	// Documents: its SBOMs and provenance were deleted (or it had none).
	Documents bool
}

// RemoveImage deregisters the image ref names, deletes its documents from
// docs (the attestation store; nil: none kept) and then, unless
// keepSnapshots, deletes the snapshots of its block devices. A snapshot
// that cannot be deleted does not stop the others; the error joins every
// failure, and the Removal says what was done all the same.
func RemoveImage(ctx context.Context, c Remover, docs DocStore, ref string, keepSnapshots bool) (Removal, error) {
	var r Removal
	im, err := Find(ctx, c, ref)
	if err != nil {
		return r, err
	}
	if err := c.DeregisterImage(ctx, im.ID); err != nil {
		return r, err
	}
	r.Image = im.ID
	var errs []error
	if docs != nil {
		if err := docs.Delete(ctx, im.ID); err != nil {
			errs = append(errs, fmt.Errorf("image %s: delete its documents: %w", im.ID, err))
		} else {
			r.Documents = true
		}
	}
	if keepSnapshots {
		return r, errors.Join(errs...)
	}
	for _, b := range im.BlockDevices {
		if b.SnapshotID == "" {
			continue
		}
		if err := c.DeleteSnapshot(ctx, b.SnapshotID); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Snapshots = append(r.Snapshots, b.SnapshotID)
	}
	return r, errors.Join(errs...)
}

// LineageEntry is one image of a lineage.
type LineageEntry struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Role    string `json:"role,omitempty"`
	Channel string `json:"channel,omitempty"`
	Gone    bool   `json:"deregistered,omitempty"`
}

// ImageGetter finds one image by id or exact name.
type ImageGetter interface {
	Image(ctx context.Context, q plugin.ImageQuery) (*plugin.Image, error)
}

// Lineage is the chain of images im was baked from, oldest first (the
// foundation, its bases), ending with im itself. An ancestor that no
// longer exists is marked Gone.
func Lineage(ctx context.Context, c ImageGetter, im *plugin.Image) []LineageEntry {
	var out []LineageEntry
	for _, id := range channels.Lineage(im) {
		a, err := c.Image(ctx, plugin.ImageQuery{ID: id})
		if err != nil {
			out = append(out, LineageEntry{ID: id, Gone: true})
			continue
		}
		out = append(out, entry(a))
	}
	return append(out, entry(im))
}

func entry(im *plugin.Image) LineageEntry {
	return LineageEntry{ID: im.ID, Name: im.Name, Role: im.Tags[channels.TagRole], Channel: im.Tags[channels.TagChannel]}
}

// VolumeMaker is what making an external pool's volume needs of a cloud.
type VolumeMaker interface {
	imageref.Finder
	CreateVolume(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error)
}

// CreateExternalVolume makes a volume from the root snapshot of the image
// ref names (sizeGiB 0: the snapshot's size), for bakes with -V: an
// external pool's volume, tagged purpose=external.
func CreateExternalVolume(ctx context.Context, c VolumeMaker, ref string, sizeGiB int) (*plugin.Volume, error) {
	im, err := Find(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	snap, err := RootSnapshot(im)
	if err != nil {
		return nil, err
	}
	return c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: snap, SizeBytes: int64(sizeGiB) << 30, Tags: plugin.Tags{owner.Purpose: owner.PurposeExternal, "ami": im.ID}})
}

// OrphanedVolumes lists the volumes whose bake is gone.
func OrphanedVolumes(ctx context.Context, l plugin.Lister) ([]string, error) {
	vs, err := l.ListVolumes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vs {
		if v.Orphaned {
			out = append(out, v.ID)
		}
	}
	return out, nil
}

// RemoveVolumes deletes the volumes named. It goes on past a failure; it
// returns the volumes deleted and every failure joined.
func RemoveVolumes(ctx context.Context, c plugin.VolumeStore, ids []string) ([]string, error) {
	var done []string
	var errs []error
	for _, id := range ids {
		if err := c.DeleteVolume(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, id)
	}
	return done, errors.Join(errs...)
}

// ResolveIn finds the image ref names in region and environment (""
// the configured one): how the bakery checks a request's base before it
// queues the bake.
func ResolveIn(ctx context.Context, cfg *config.Config, region, environment string, ref imageref.Ref) (*plugin.Image, error) {
	var im *plugin.Image
	err := withCloudIn(cfg, region, environment, func(cl plugin.Cloud) (err error) {
		im, err = imageref.Resolve(ctx, cl, ref)
		return err
	})
	return im, err
}

// FindIn lists the images of region (in the configured environment)
// carrying each of the tag sets, newest first: the bakery's dashboard
// reads a region's foundations, bases and apps with it.
func FindIn(ctx context.Context, cfg *config.Config, region string, sets ...plugin.Tags) ([]*plugin.Image, error) {
	var out []*plugin.Image
	err := withCloudIn(cfg, region, "", func(cl plugin.Cloud) error {
		for _, tags := range sets {
			ims, err := cl.FindImages(ctx, tags)
			if err != nil {
				return err
			}
			out = append(out, ims...)
		}
		return nil
	})
	return out, err
}

// withCloudIn opens the cloud of region and environment ("" the
// configured one) for fn, and closes it.
func withCloudIn(cfg *config.Config, region, environment string, fn func(plugin.Cloud) error) error {
	c := *cfg
	c.Context.Region = region
	if environment != "" {
		if _, ok := cfg.Environments[environment]; !ok {
			return fmt.Errorf("no environment %q", environment)
		}
		c.Context.Environment = environment
	}
	name, err := CloudName(&c)
	if err != nil {
		return err
	}
	// The store was readied when the bakery started.
	cl, err := newCloud(&c, name, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer Close(cl)
	return fn(cl)
}
