package service

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/plugin"
)

// fakeCloud is the few cloud calls the service makes, in memory: images
// (newest first), their manifests, snapshots that fail to delete on
// request, volumes and the tags set.
type fakeCloud struct {
	images      []*plugin.Image
	manifests   map[string][]plugin.Package
	undeletable map[string]bool
	volumes     []*plugin.Volume
	calls       []string
}

func (f *fakeCloud) Image(_ context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	for _, im := range f.images {
		if (q.ID != "" && im.ID == q.ID) || (q.Name != "" && im.Name == q.Name) {
			return im, nil
		}
	}
	return nil, fmt.Errorf("image %+v: %w", q, plugin.ErrNotFound)
}

func (f *fakeCloud) FindImages(_ context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	var out []*plugin.Image
	for _, im := range f.images {
		ok := true
		for k, v := range tags {
			ok = ok && im.Tags[k] == v
		}
		if ok {
			out = append(out, im)
		}
	}
	return out, nil
}

func (f *fakeCloud) DeregisterImage(_ context.Context, id string) error {
	for i, im := range f.images {
		if im.ID == id {
			f.images = append(f.images[:i], f.images[i+1:]...)
			f.calls = append(f.calls, "deregister "+id)
			return nil
		}
	}
	return fmt.Errorf("image %s: %w", id, plugin.ErrNotFound)
}

func (f *fakeCloud) DeleteSnapshot(_ context.Context, id string) error {
	if f.undeletable[id] {
		return fmt.Errorf("snapshot %s is in use", id)
	}
	f.calls = append(f.calls, "delete "+id)
	return nil
}

func (f *fakeCloud) Manifest(_ context.Context, id string) ([]plugin.Package, error) {
	return f.manifests[id], nil
}

func (f *fakeCloud) CreateTags(_ context.Context, id string, tags plugin.Tags) error {
	im, err := f.Image(context.Background(), plugin.ImageQuery{ID: id})
	if err != nil {
		return err
	}
	for k, v := range tags {
		im.Tags[k] = v
	}
	return nil
}

func (f *fakeCloud) DeleteTags(_ context.Context, id string, keys ...string) error {
	if im, err := f.Image(context.Background(), plugin.ImageQuery{ID: id}); err == nil {
		for _, k := range keys {
			delete(im.Tags, k)
		}
	}
	return nil
}

func (f *fakeCloud) CreateVolume(_ context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	v := &plugin.Volume{ID: fmt.Sprintf("vol-%017d", len(f.volumes)+1), SnapshotID: r.SnapshotID, SizeBytes: r.SizeBytes, Tags: r.Tags}
	f.volumes = append(f.volumes, v)
	return v, nil
}

func (f *fakeCloud) Volumes(context.Context) ([]*plugin.Volume, error) { return f.volumes, nil }

func (f *fakeCloud) DeleteVolume(_ context.Context, id string) error {
	for i, v := range f.volumes {
		if v.ID == id {
			f.volumes = append(f.volumes[:i], f.volumes[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("volume %s: %w", id, plugin.ErrNotFound)
}

// image makes an image with a root snapshot and the given tags.
func image(n int, name string, tags plugin.Tags) *plugin.Image {
	return &plugin.Image{
		ID: fmt.Sprintf("ami-%017d", n), Name: name, RootDeviceName: "/dev/xvda", Tags: tags,
		BlockDevices: []plugin.BlockDeviceMapping{
			{DeviceName: "/dev/xvda", SnapshotID: fmt.Sprintf("snap-%017d", n)},
			{DeviceName: "/dev/xvdb", SnapshotID: fmt.Sprintf("snap-%017d", 100+n)},
			{DeviceName: "/dev/xvdc", VirtualName: "ephemeral0"},
		},
	}
}
