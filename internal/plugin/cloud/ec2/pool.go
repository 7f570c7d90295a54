package ec2

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// The volume pool keeps, per base snapshot, a number of EBS volumes made
// from it ahead of time in this host's availability zone (the Bakery's
// pool), optionally attached to this instance already (pool_attach). A
// bake takes one — a DescribeVolumes and a CreateTags — instead of
// CreateVolume and its waiter (and, attached, instead of AttachVolume,
// its wait and the wait for the local device); the pool refills in the
// background. A bake never waits for the pool: when it is empty the bake
// makes its own volume.
//
// A pool volume is tagged purpose=pool, base (the image), host (this
// instance). Taking it retags it with the bake's tags (purpose=amination,
// bake, host), so from then on it is the bake's work volume. The targets
// are this host's: a file in the state directory (targets.go).

func (c *Cloud) poolLock(kind, snap string) string {
	return filepath.Join(c.lockDir, "ec2-pool-"+kind+"-"+c.region+"-"+snap+".lock")
}

// poolFilters select this host's pool volumes (of one snapshot, unless "").
func (c *Cloud) poolFilters(h plugin.Host, snap string) []types.Filter {
	f := []types.Filter{
		tagIs(owner.Purpose, owner.PurposePool),
		tagIs(owner.Host, h.InstanceID),
	}
	if snap != "" {
		f = append(f, types.Filter{Name: aws.String("snapshot-id"), Values: []string{snap}})
	}
	return f
}

// poolVolumes lists this host's pool volumes (of one snapshot, unless "").
func (c *Cloud) poolVolumes(ctx context.Context, snap string) ([]types.Volume, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	var out []types.Volume
	p := ec2.NewDescribeVolumesPaginator(c.ec2, &ec2.DescribeVolumesInput{Filters: c.poolFilters(h, snap)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiErr("DescribeVolumes", err)
		}
		out = append(out, page.Volumes...)
	}
	sort.Slice(out, func(i, j int) bool { return aws.ToTime(out[i].CreateTime).Before(aws.ToTime(out[j].CreateTime)) })
	return out, nil
}

// usable reports whether a pool volume can be taken by this host: ready,
// and if attached, attached here.
func usable(v types.Volume, h plugin.Host) bool {
	switch v.State {
	case types.VolumeStateAvailable:
		return len(v.Attachments) == 0
	case types.VolumeStateInUse:
		return len(v.Attachments) == 1 && aws.ToString(v.Attachments[0].InstanceId) == h.InstanceID &&
			v.Attachments[0].State == types.VolumeAttachmentStateAttached
	}
	return false
}

// takePooled claims a ready pool volume that fits the request, or returns
// nil. Nothing is asked of EC2 when this host keeps no pool of the snapshot.
func (c *Cloud) takePooled(ctx context.Context, r plugin.VolumeRequest) (*plugin.Volume, error) {
	if t, err := c.poolTarget(r.SnapshotID); err != nil || t == nil {
		return nil, err
	}
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	// Bakes on this host take under one lock: a volume is listed and
	// retagged before the next bake lists.
	lock, err := flock.Exclusive(ctx, c.poolLock("take", r.SnapshotID))
	if err != nil {
		return nil, fmt.Errorf("take a pool volume: %w", err)
	}
	defer lock.Unlock()
	vols, err := c.poolVolumes(ctx, r.SnapshotID)
	if err != nil {
		return nil, fmt.Errorf("take a pool volume: %w", err)
	}
	for _, v := range vols {
		if !c.fits(v, h, r) {
			continue
		}
		id := aws.ToString(v.VolumeId)
		if err := c.CreateTags(ctx, id, r.Tags); err != nil {
			return nil, fmt.Errorf("take pool volume %s: %w", id, err)
		}
		out := fromVolume(v)
		for k, val := range r.Tags {
			out.Tags[k] = val
		}
		c.log.Debug("volume taken from the pool", "volume", id, "snapshot", r.SnapshotID, "attached", out.Device)
		if c.poolTaken != nil {
			c.poolTaken(r.SnapshotID)
		}
		return out, nil
	}
	return nil, nil
}

// fits reports whether a pool volume is what the request would make
// (after volume settings change, drain and fill the pool again: the
// older volumes are never taken).
func (c *Cloud) fits(v types.Volume, h plugin.Host, r plugin.VolumeRequest) bool {
	gib := int32((r.SizeBytes + (1<<30 - 1)) >> 30)
	return usable(v, h) && aws.ToString(v.AvailabilityZone) == h.AvailabilityZone &&
		(gib == 0 || aws.ToInt32(v.Size) == gib) && string(v.VolumeType) == c.volumeType(r.Type) &&
		aws.ToBool(v.Encrypted) == (c.s.Encrypted || c.s.KMSKeyID != "") &&
		(c.s.IOPS == 0 || aws.ToInt32(v.Iops) == c.s.IOPS) && (c.s.Throughput == 0 || aws.ToInt32(v.Throughput) == c.s.Throughput)
}

// FillPool sets the pool target of a snapshot (unless f.Target < 0) and
// makes volumes until that many are ready. If another process on this host
// is filling the same pool it returns at once.
func (c *Cloud) FillPool(ctx context.Context, f plugin.PoolFill) (made int, err error) {
	if _, err := c.Snapshot(ctx, f.Snapshot); err != nil { // a missing one sets no target
		return 0, fmt.Errorf("pool: %w", err)
	}
	if f.Target >= 0 {
		if err := c.setPoolTarget(f.Snapshot, &poolTarget{Target: f.Target, Base: f.Base}); err != nil {
			return 0, err
		}
	}
	lock, err := flock.TryExclusive(c.poolLock("fill", f.Snapshot))
	if errors.Is(err, flock.ErrLocked) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer lock.Unlock()
	h, err := c.Host(ctx)
	if err != nil {
		return 0, err
	}
	for {
		t, err := c.poolTarget(f.Snapshot)
		if err != nil || t == nil {
			return made, err // nil: drained meanwhile
		}
		vols, err := c.poolVolumes(ctx, f.Snapshot)
		if err != nil {
			return made, fmt.Errorf("pool of %s: %w", f.Snapshot, err)
		}
		ready := 0
		for _, v := range vols {
			if usable(v, h) {
				ready++
			}
		}
		if ready >= t.Target {
			return made, nil
		}
		if err := c.makePooled(ctx, f, t.Base); err != nil {
			return made, err
		}
		made++
	}
}

// makePooled makes one pool volume and, with pool_attach, attaches it.
// A volume that fails on the way is deleted.
func (c *Cloud) makePooled(ctx context.Context, f plugin.PoolFill, base string) (err error) {
	h, err := c.Host(ctx)
	if err != nil {
		return err
	}
	// The snapshot's size, as a bake asks (one not grown with --root-volume-size).
	s, err := c.Snapshot(ctx, f.Snapshot)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	v, err := c.createVolume(ctx, plugin.VolumeRequest{SnapshotID: f.Snapshot, SizeBytes: s.SizeBytes,
		Tags: owner.Pooled(base, h.InstanceID)})
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.removePooled(context.WithoutCancel(ctx), v.ID, true))
		}
	}()
	if c.s.PoolAttach {
		if err := c.attachPooled(ctx, v.ID, f.Devices); err != nil {
			return err
		}
	}
	// Ready only if the pool still wants it: it may have been drained meanwhile.
	if t, err := c.poolTarget(f.Snapshot); err != nil {
		return err
	} else if t == nil {
		return errors.New("pool: drained while a volume was made")
	}
	c.log.Debug("pool volume ready", "volume", v.ID, "snapshot", f.Snapshot, "attached", c.s.PoolAttach)
	return nil
}

// attachPooled attaches a pool volume at a device the allocator reserves
// for as long as the attach takes: from then on EC2 lists the device as
// this instance's, so no bake picks it.
func (c *Cloud) attachPooled(ctx context.Context, id string, d plugin.DeviceAllocator) error {
	if d == nil {
		return errors.New("pool_attach: no blockdevice plugin to pick a device name")
	}
	slot, err := d.Allocate(ctx, "")
	if err != nil {
		return fmt.Errorf("pool volume %s: %w", id, err)
	}
	defer slot.Release()
	if _, err := c.AttachVolume(ctx, id, slot.Name); err != nil {
		return fmt.Errorf("pool volume %s: %w", id, err)
	}
	return nil
}

// removePooled detaches (when attached) and deletes a pool volume.
func (c *Cloud) removePooled(ctx context.Context, id string, attached bool) error {
	if attached {
		if err := c.DetachVolume(ctx, id); err != nil && !errors.Is(err, plugin.ErrNotFound) {
			return err
		}
	}
	if err := c.DeleteVolume(ctx, id); err != nil && !errors.Is(err, plugin.ErrNotFound) {
		return err
	}
	return nil
}

// DrainPool forgets the target of a snapshot ("" for every snapshot) and
// deletes this host's ready pool volumes of it (detaching attached ones).
func (c *Cloud) DrainPool(ctx context.Context, snap string) (int, error) {
	snaps := []string{snap}
	if snap == "" {
		all, err := c.poolTargets()
		if err != nil {
			return 0, err
		}
		snaps = slices.Sorted(maps.Keys(all))
	}
	n := 0
	for _, s := range snaps {
		m, err := c.drainOne(ctx, s)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *Cloud) drainOne(ctx context.Context, snap string) (int, error) {
	if err := c.setPoolTarget(snap, nil); err != nil {
		return 0, err
	}
	lock, err := flock.Exclusive(ctx, c.poolLock("take", snap)) // no bake takes one meanwhile
	if err != nil {
		return 0, fmt.Errorf("drain pool: %w", err)
	}
	defer lock.Unlock()
	h, err := c.Host(ctx)
	if err != nil {
		return 0, err
	}
	vols, err := c.poolVolumes(ctx, snap)
	if err != nil {
		return 0, fmt.Errorf("drain pool: %w", err)
	}
	n := 0
	for _, v := range vols {
		if !usable(v, h) {
			continue // creating: its filler deletes it; stuck: gc
		}
		if err := c.removePooled(ctx, aws.ToString(v.VolumeId), v.State == types.VolumeStateInUse); err != nil {
			return n, fmt.Errorf("drain pool: %w", err)
		}
		n++
	}
	return n, nil
}

// PoolStatus lists this host's pools in this region: targets and volumes.
func (c *Cloud) PoolStatus(ctx context.Context) ([]plugin.PoolStatus, error) {
	h, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	targets, err := c.poolTargets()
	if err != nil {
		return nil, err
	}
	vols, err := c.poolVolumes(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("pool status: %w", err)
	}
	by := map[string]*plugin.PoolStatus{}
	get := func(snap string) *plugin.PoolStatus {
		if by[snap] == nil {
			by[snap] = &plugin.PoolStatus{SnapshotID: snap, Images: []string{}}
		}
		return by[snap]
	}
	for snap, t := range targets {
		p := get(snap)
		p.Target = t.Target
		if t.Base != "" {
			p.Images = []string{t.Base}
		}
	}
	for _, v := range vols {
		p := get(aws.ToString(v.SnapshotId))
		if b := tagsOf(v.Tags)[owner.Base]; len(p.Images) == 0 && b != "" {
			p.Images = []string{b}
		}
		switch {
		case usable(v, h) && v.State == types.VolumeStateInUse:
			p.Ready++
			p.Attached++
		case usable(v, h):
			p.Ready++
		case v.State == types.VolumeStateCreating:
			p.Creating++
		}
	}
	out := make([]plugin.PoolStatus, 0, len(by))
	for _, k := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[k])
	}
	return out, nil
}
