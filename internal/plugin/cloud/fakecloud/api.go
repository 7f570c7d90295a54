package fakecloud

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Image finds an image by id or exact name.
func (c *Cloud) Image(ctx context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	key := q.ID
	if key == "" {
		key = q.Name
	}
	if key == "" {
		return nil, fmt.Errorf("image: give an id or a name")
	}
	if err := c.call(ctx, "Image", key); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, im := range c.images {
		if (q.ID != "" && im.ID == q.ID) || (q.ID == "" && im.Name == q.Name) {
			return copyImage(im), nil
		}
	}
	return nil, notFound("image", key)
}

// Snapshot describes a snapshot.
func (c *Cloud) Snapshot(ctx context.Context, id string) (*plugin.Snapshot, error) {
	if err := c.call(ctx, "Snapshot", id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snapshots[id]
	if !ok {
		return nil, notFound("snapshot", id)
	}
	cp := *s
	cp.Tags = clone(s.Tags)
	return &cp, nil
}

// Volume describes a volume.
func (c *Cloud) Volume(ctx context.Context, id string) (*plugin.Volume, error) {
	if err := c.call(ctx, "Volume", id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok {
		return nil, notFound("volume", id)
	}
	cp := *v
	cp.Tags = clone(v.Tags)
	return &cp, nil
}

// CreateVolume makes a volume from a snapshot, or an empty one.
func (c *Cloud) CreateVolume(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	if err := c.call(ctx, "CreateVolume", r.SnapshotID); err != nil {
		return nil, err
	}
	return c.createVolume(r)
}

func (c *Cloud) createVolume(r plugin.VolumeRequest) (*plugin.Volume, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size := r.SizeBytes
	if r.SnapshotID != "" {
		s, ok := c.snapshots[r.SnapshotID]
		if !ok {
			return nil, notFound("snapshot", r.SnapshotID)
		}
		if v := c.takePooled(r); v != nil {
			return v, nil
		}
		size = max(size, s.SizeBytes)
	}
	if size <= 0 {
		return nil, fmt.Errorf("create volume: no size")
	}
	v := &plugin.Volume{ID: c.newID("vol"), SnapshotID: r.SnapshotID, SizeBytes: size, State: "available", CreatedAt: time.Now(), Tags: clone(r.Tags)}
	c.volumes[v.ID] = v
	cp := *v
	return &cp, nil
}

// AttachVolume attaches a volume to this host; its local path is
// /dev/fake/ID.
func (c *Cloud) AttachVolume(ctx context.Context, id, device string) (plugin.Attachment, error) {
	if err := c.call(ctx, "AttachVolume", id); err != nil {
		return plugin.Attachment{}, err
	}
	return c.attach(id, device)
}

func (c *Cloud) attach(id, device string) (plugin.Attachment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok {
		return plugin.Attachment{}, notFound("volume", id)
	}
	if v.State == "in-use" {
		return plugin.Attachment{}, fmt.Errorf("volume %s is attached already", id)
	}
	if device == "" {
		device = "/dev/sdf"
	}
	v.State, v.Device, v.AttachedTo = "in-use", device, c.HostInfo.InstanceID
	return plugin.Attachment{VolumeID: id, Device: device, LocalPath: "/dev/fake/" + id}, nil
}

// DetachVolume detaches a volume; a detached one is left as it is.
func (c *Cloud) DetachVolume(ctx context.Context, id string) error {
	if err := c.call(ctx, "DetachVolume", id); err != nil {
		return err
	}
	return c.detach(id)
}

func (c *Cloud) detach(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok {
		return nil // the contract: nothing to undo
	}
	v.State, v.Device, v.AttachedTo = "available", "", ""
	return nil
}

// DeleteVolume deletes a detached volume.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	if err := c.call(ctx, "DeleteVolume", id); err != nil {
		return err
	}
	return c.deleteVolume(id)
}

func (c *Cloud) deleteVolume(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[id]
	if !ok {
		return notFound("volume", id)
	}
	if v.State == "in-use" {
		return fmt.Errorf("volume %s is attached: detach it first", id)
	}
	delete(c.volumes, id)
	return nil
}

// CreateSnapshot snapshots a volume.
func (c *Cloud) CreateSnapshot(ctx context.Context, r plugin.SnapshotRequest) (*plugin.Snapshot, error) {
	if err := c.call(ctx, "CreateSnapshot", r.VolumeID); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.volumes[r.VolumeID]
	if !ok {
		return nil, notFound("volume", r.VolumeID)
	}
	s := &plugin.Snapshot{ID: c.newID("snap"), VolumeID: v.ID, ParentID: v.SnapshotID, SizeBytes: v.SizeBytes, Description: r.Description,
		State: "completed", CreatedAt: time.Now(), Tags: clone(r.Tags)}
	c.snapshots[s.ID] = s
	cp := *s
	return &cp, nil
}

// DeleteSnapshot deletes a snapshot no image uses.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	if err := c.call(ctx, "DeleteSnapshot", id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.snapshots[id]; !ok {
		return notFound("snapshot", id)
	}
	for _, im := range c.images {
		for _, b := range im.BlockDevices {
			if b.SnapshotID == id {
				return fmt.Errorf("snapshot %s is used by image %s: deregister it first", id, im.ID)
			}
		}
	}
	delete(c.snapshots, id)
	return nil
}

// RegisterImage registers an image; a taken name wraps ErrExists.
func (c *Cloud) RegisterImage(ctx context.Context, r plugin.ImageRequest) (*plugin.Image, error) {
	if err := c.call(ctx, "RegisterImage", r.Name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, im := range c.images {
		if im.Name == r.Name {
			return nil, fmt.Errorf("an image named %q (%s) %w", r.Name, im.ID, plugin.ErrExists)
		}
	}
	for _, b := range r.BlockDevices {
		if _, ok := c.snapshots[b.SnapshotID]; b.SnapshotID != "" && !ok {
			return nil, notFound("snapshot", b.SnapshotID)
		}
	}
	im := &plugin.Image{ID: c.newID("ami"), Name: r.Name, Description: r.Description, Architecture: r.Architecture,
		VirtualizationType: r.VirtualizationType, RootDeviceName: r.RootDeviceName, RootDeviceType: "ebs",
		BlockDevices: append([]plugin.BlockDeviceMapping(nil), r.BlockDevices...), EnaSupport: r.EnaSupport, SriovNetSupport: r.SriovNetSupport,
		BootMode: r.BootMode, KernelID: r.KernelID, RamdiskID: r.RamdiskID, State: "available", CreatedAt: time.Now(), Tags: clone(r.Tags)}
	c.images[im.ID] = im
	if len(r.Packages) > 0 {
		c.manifests[im.ID] = append([]plugin.Package(nil), r.Packages...)
	}
	return copyImage(im), nil
}

// DeregisterImage deregisters an image; its snapshots stay.
func (c *Cloud) DeregisterImage(ctx context.Context, id string) error {
	if err := c.call(ctx, "DeregisterImage", id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.images[id]; !ok {
		return notFound("image", id)
	}
	delete(c.images, id)
	delete(c.manifests, id)
	return nil
}

// FindImages lists the images carrying all the given tags, newest first.
func (c *Cloud) FindImages(ctx context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	if err := c.call(ctx, "FindImages", ""); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*plugin.Image
	for _, im := range c.images {
		ok := true
		for k, v := range tags {
			ok = ok && im.Tags[k] == v
		}
		if ok {
			out = append(out, copyImage(im))
		}
	}
	// Ids are numbered in order: the highest is the newest.
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// CreateTags adds or replaces tags on an image, snapshot or volume.
func (c *Cloud) CreateTags(ctx context.Context, id string, tags plugin.Tags) error {
	if err := c.call(ctx, "CreateTags", id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.tagsOf(id)
	if err != nil {
		return err
	}
	for k, v := range tags {
		t[k] = v
	}
	return nil
}

// DeleteTags removes tags by key.
func (c *Cloud) DeleteTags(ctx context.Context, id string, keys ...string) error {
	if err := c.call(ctx, "DeleteTags", id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.tagsOf(id)
	if err != nil {
		return nil // the contract: nothing carries the keys
	}
	for _, k := range keys {
		delete(t, k)
	}
	return nil
}

// tagsOf is the tag map of a resource; c.mu is held.
func (c *Cloud) tagsOf(id string) (plugin.Tags, error) {
	if im, ok := c.images[id]; ok {
		return im.Tags, nil
	}
	if s, ok := c.snapshots[id]; ok {
		return s.Tags, nil
	}
	if v, ok := c.volumes[id]; ok {
		return v.Tags, nil
	}
	return nil, notFound("resource", id)
}
