package fakecloud

import (
	"context"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Volumes is a volume plugin on the fake cloud: the volume is only a
// record, attached at /dev/fake/ID, and growing it does nothing. Its
// calls go through the cloud's hook as "Volumes.Method arg".
type Volumes struct{ c *Cloud }

// VolumePlugin is the volume plugin of this cloud.
func (c *Cloud) VolumePlugin() *Volumes { return &Volumes{c} }

// Create makes a volume from the base's root snapshot, or an empty one.
func (v *Volumes) Create(ctx context.Context, base *plugin.Image, size int64, tags plugin.Tags) (*plugin.Volume, error) {
	r := plugin.VolumeRequest{SizeBytes: size, Tags: tags}
	arg := ""
	if base != nil {
		if root := base.Root(); root != nil {
			r.SnapshotID = root.SnapshotID
		}
		arg = base.ID
	}
	if err := v.c.call(ctx, "Volumes.Create", arg); err != nil {
		return nil, err
	}
	return v.c.createVolume(r)
}

// Attach attaches the volume and returns /dev/fake/ID.
func (v *Volumes) Attach(ctx context.Context, vol *plugin.Volume, device string) (string, error) {
	if err := v.c.call(ctx, "Volumes.Attach", vol.ID); err != nil {
		return "", err
	}
	a, err := v.c.attach(vol.ID, device)
	return a.LocalPath, err
}

// Adopt takes an existing volume; one attached already is used where it is.
func (v *Volumes) Adopt(ctx context.Context, id string) (*plugin.Volume, string, error) {
	if err := v.c.call(ctx, "Volumes.Adopt", id); err != nil {
		return nil, "", err
	}
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	vol, ok := v.c.volumes[id]
	if !ok {
		return nil, "", notFound("volume", id)
	}
	cp := *vol
	cp.Tags = clone(vol.Tags)
	if vol.State == "in-use" {
		return &cp, "/dev/fake/" + id, nil
	}
	return &cp, "", nil
}

// Grow does nothing but pass the hook.
func (v *Volumes) Grow(ctx context.Context, device string, _ int) error {
	return v.c.call(ctx, "Volumes.Grow", strings.TrimPrefix(device, "/dev/fake/"))
}

// GrowMounted does nothing but pass the hook.
func (v *Volumes) GrowMounted(ctx context.Context, mountPoint string) error {
	return v.c.call(ctx, "Volumes.GrowMounted", "")
}

// Detach detaches the volume.
func (v *Volumes) Detach(ctx context.Context, vol *plugin.Volume) error {
	if err := v.c.call(ctx, "Volumes.Detach", vol.ID); err != nil {
		return err
	}
	return v.c.detach(vol.ID)
}

// Delete deletes the volume, which must be detached.
func (v *Volumes) Delete(ctx context.Context, vol *plugin.Volume) error {
	if err := v.c.call(ctx, "Volumes.Delete", vol.ID); err != nil {
		return err
	}
	return v.c.deleteVolume(vol.ID)
}
