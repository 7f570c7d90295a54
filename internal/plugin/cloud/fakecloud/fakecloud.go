// Package fakecloud is an in-memory cloud and volume plugin for tests.
// Images, snapshots and volumes live in maps, with ids numbered in order
// (ami-00000001, snap-00000002, ...), and every call goes through a hook
// that sees it before it is made and can make it fail, so a bake's steps
// and whatever sits on a cloud are tested as an ordinary user in seconds:
// no loop device, no mount, no root.
//
// It is as strict as the real clouds where an undo in the wrong order
// would show: an attached volume cannot be deleted, nor a snapshot an
// image uses, and a taken image name is refused (ErrExists). A missing
// image, snapshot or volume wraps plugin.ErrNotFound.
package fakecloud

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Cloud is the fake cloud: a plugin.Cloud and a plugin.Distributor.
type Cloud struct {
	// Hook, when set, sees every call before it is made, as "Method arg"
	// (for example "CreateSnapshot vol-00000002"); an error it returns is
	// the call's. A Recorder's Hook records the calls in order.
	Hook func(call string) error
	// HostInfo is what Host says.
	HostInfo plugin.Host
	// Running are the bakes (by id) still running: gc leaves what they
	// tagged alone, and ListVolumes does not call their volumes orphaned.
	Running map[string]bool

	mu        sync.Mutex
	n         int
	images    map[string]*plugin.Image
	snapshots map[string]*plugin.Snapshot
	volumes   map[string]*plugin.Volume
	manifests map[string][]plugin.Package
	pools     map[string]fakePool
	poolTaken func(snapshotID string)
}

// fakePool is a pool's target and base image.
type fakePool struct {
	target int
	base   string
}

// New makes an empty cloud in region us-east-1 on instance i-fake.
func New() *Cloud {
	return &Cloud{
		HostInfo: plugin.Host{Region: "us-east-1", AvailabilityZone: "us-east-1a", InstanceID: "i-fake"},
		images:   map[string]*plugin.Image{}, snapshots: map[string]*plugin.Snapshot{}, volumes: map[string]*plugin.Volume{},
		manifests: map[string][]plugin.Package{}, pools: map[string]fakePool{}, Running: map[string]bool{},
	}
}

// call passes a call through the hook.
func (c *Cloud) call(ctx context.Context, method, arg string) error {
	if err := ctx.Err(); err != nil { // as every real cloud: a cancelled call changes nothing
		return fmt.Errorf("%s %s: %w", method, arg, err)
	}
	if c.Hook == nil {
		return nil
	}
	if arg != "" {
		method += " " + arg
	}
	return c.Hook(method)
}

// newID numbers a new resource; c.mu is held.
func (c *Cloud) newID(prefix string) string {
	c.n++
	return fmt.Sprintf("%s-%08x", prefix, c.n)
}

func notFound(kind, id string) error {
	return fmt.Errorf("%s %s: %w", kind, id, plugin.ErrNotFound)
}

// AddImage puts an image in the cloud without a call, as an import
// would: a root snapshot of sizeBytes at /dev/sda1, x86_64, hvm.
func (c *Cloud) AddImage(name string, sizeBytes int64, tags plugin.Tags) *plugin.Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := &plugin.Snapshot{ID: c.newID("snap"), SizeBytes: sizeBytes, State: "completed", CreatedAt: time.Now(), Tags: plugin.Tags{}}
	c.snapshots[snap.ID] = snap
	im := &plugin.Image{ID: c.newID("ami"), Name: name, Architecture: "x86_64", VirtualizationType: "hvm", RootDeviceName: "/dev/sda1",
		RootDeviceType: "ebs", State: "available", CreatedAt: time.Now(), Tags: clone(tags),
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: snap.ID, VolumeSizeGiB: (sizeBytes + 1<<30 - 1) >> 30, VolumeType: "gp3", DeleteOnTermination: true}}}
	c.images[im.ID] = im
	return copyImage(im)
}

// AddImageArch is AddImage for an image of another architecture.
func (c *Cloud) AddImageArch(name, arch string, sizeBytes int64, tags plugin.Tags) *plugin.Image {
	im := c.AddImage(name, sizeBytes, tags)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.images[im.ID].Architecture = arch
	return copyImage(c.images[im.ID])
}

// Images lists the images, by id.
func (c *Cloud) Images() []*plugin.Image {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*plugin.Image, 0, len(c.images))
	for _, im := range c.images {
		out = append(out, copyImage(im))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Snapshots lists the snapshots, by id.
func (c *Cloud) Snapshots() []*plugin.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*plugin.Snapshot, 0, len(c.snapshots))
	for _, s := range c.snapshots {
		cp := *s
		cp.Tags = clone(s.Tags)
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Volumes lists the volumes, by id.
func (c *Cloud) Volumes() []*plugin.Volume {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*plugin.Volume, 0, len(c.volumes))
	for _, v := range c.volumes {
		cp := *v
		cp.Tags = clone(v.Tags)
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func clone(t plugin.Tags) plugin.Tags {
	out := plugin.Tags{}
	for k, v := range t {
		out[k] = v
	}
	return out
}

func copyImage(im *plugin.Image) *plugin.Image {
	cp := *im
	cp.Tags = clone(im.Tags)
	cp.BlockDevices = append([]plugin.BlockDeviceMapping(nil), im.BlockDevices...)
	return &cp
}

// Host says where the bake runs.
func (c *Cloud) Host(ctx context.Context) (plugin.Host, error) {
	if err := c.call(ctx, "Host", ""); err != nil {
		return plugin.Host{}, err
	}
	return c.HostInfo, nil
}

// Distribute copies an image to other regions (only recorded: the copies
// are not kept) and returns the image and its copies.
func (c *Cloud) Distribute(ctx context.Context, im *plugin.Image, d plugin.Distribution) ([]plugin.RegionImage, error) {
	if err := c.call(ctx, "Distribute", im.ID); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []plugin.RegionImage{{Region: c.HostInfo.Region, ImageID: im.ID}}
	for _, r := range d.CopyTo {
		out = append(out, plugin.RegionImage{Region: r, ImageID: c.newID("ami")})
	}
	return out, nil
}

var (
	_ plugin.Cloud       = (*Cloud)(nil)
	_ plugin.Distributor = (*Cloud)(nil)
	_ plugin.Volumes     = (*Volumes)(nil)
)
