// Package cloudtest is the conformance suite of the cloud API: the same
// subtests run against every cloud (the local cloud, EC2 on moto and the
// fake), so that they agree on what a missing resource, a repeated call
// and a cancelled one give, as the role interfaces in package plugin write
// it down. Each optional capability (plugin.Pool, plugin.Lister, ...) has
// a sub-suite of its own, skipped on a cloud without it, and the fixture
// says which capabilities the cloud must have. It is to plugin.Cloud what containerd's snapshots/testsuite is to
// its Snapshotter.
//
// A cloud's test calls Run with a function that makes the cloud and a
// Fixture describing it:
//
//	func TestConformance(t *testing.T) {
//		cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture { ... })
//	}
package cloudtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

// Fixture is a cloud under test and what the suite needs to know of it.
type Fixture struct {
	Cloud plugin.Cloud
	// BaseSnapshot is a completed snapshot the suite makes volumes from.
	BaseSnapshot string
	// Attach says whether volumes can be attached to this host (the local
	// cloud needs root for loop devices); Device is the name to attach at.
	Attach bool
	Device string
	// Tick is the resolution of the cloud's creation times (EC2 reports
	// whole seconds): the suite waits that long between two images whose
	// order it checks.
	Tick time.Duration
	// IgnoresMappings and Reattaches say where the cloud's test double
	// departs from the real cloud (moto, standing in for EC2, registers an
	// image with a snapshot of its own instead of the mappings it is
	// given, and attaches an attached volume again): the suite skips
	// those checks and logs that it did.
	IgnoresMappings, Reattaches bool
	// SnapshotsKeepNoData says the cloud's test double keeps no data for
	// the snapshots CreateSnapshot makes (moto keeps only what the EBS
	// direct APIs wrote): the DiskDigests sub-suite skips the digest of a
	// new snapshot of the base and logs that it did.
	SnapshotsKeepNoData bool
	// Capabilities are the optional capabilities (Pool, Lister, ...) the
	// cloud must have, and no others: each has a sub-suite, skipped on a
	// cloud without it.
	Capabilities []string
	// RunningBake makes the bake id count as running for gc, as a bake's
	// job lock does (nil: nothing to do).
	RunningBake func(t *testing.T, id string)
	// Abandon makes a volume this process made look left by a killed
	// bake, as the local cloud's owner lock being free does (nil: nothing
	// to do).
	Abandon func(t *testing.T, volumeID string)
}

// Run runs every subtest against the cloud newFixture makes. newFixture is
// called once, with t (it may skip t when the cloud cannot run here); the
// subtests share the cloud and each removes what it made.
func Run(t *testing.T, newFixture func(t *testing.T) *Fixture) {
	f := newFixture(t)
	s := &suite{f: f, c: f.Cloud}
	for _, st := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Host", s.host},
		{"NotFound", s.notFound},
		{"Volumes", s.volumes},
		{"Attach", s.attach},
		{"Snapshots", s.snapshots},
		{"Images", s.images},
		{"FindImages", s.findImages},
		{"Tags", s.tags},
		{"Cancelled", s.cancelled},
	} {
		t.Run(st.name, st.fn)
	}
	for _, st := range s.capabilitySuites() {
		t.Run(st.name, st.fn)
	}
}

type suite struct {
	f *Fixture
	c plugin.Cloud
}

// unique is a name no other run of the suite uses.
func unique(prefix string) string { return prefix + "-" + ids.New("x")[2:] }

func isNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("%s: got %v, want an error wrapping plugin.ErrNotFound", what, err)
	}
}

// refused checks an error that must not say not-found: the thing exists.
func refused(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("%s: got %v, want a refusal that does not wrap plugin.ErrNotFound", what, err)
	}
}

// gone removes what a subtest made at its end; it is gone already when
// the subtest removed it itself.
func gone(t *testing.T, what string, rm func(context.Context) error) {
	t.Cleanup(func() {
		if err := rm(context.Background()); err != nil && !errors.Is(err, plugin.ErrNotFound) {
			t.Errorf("cleanup: %s: %v", what, err)
		}
	})
}

func (s *suite) newVolume(t *testing.T, r plugin.VolumeRequest) *plugin.Volume {
	t.Helper()
	v, err := s.c.CreateVolume(context.Background(), r)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	gone(t, "delete volume "+v.ID, func(ctx context.Context) error { return s.c.DeleteVolume(ctx, v.ID) })
	return v
}

func (s *suite) newSnapshot(t *testing.T, tags plugin.Tags) *plugin.Snapshot {
	t.Helper()
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot})
	sn, err := s.c.CreateSnapshot(context.Background(), plugin.SnapshotRequest{VolumeID: v.ID, Description: "cloudtest", Tags: tags})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	gone(t, "delete snapshot "+sn.ID, func(ctx context.Context) error { return s.c.DeleteSnapshot(ctx, sn.ID) })
	return sn
}

func (s *suite) newImage(t *testing.T, name, snap string, tags plugin.Tags) *plugin.Image {
	t.Helper()
	im, err := s.c.RegisterImage(context.Background(), imageRequest(name, snap, tags))
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	gone(t, "deregister image "+im.ID, func(ctx context.Context) error { return s.c.DeregisterImage(ctx, im.ID) })
	return im
}

func imageRequest(name, snap string, tags plugin.Tags) plugin.ImageRequest {
	return plugin.ImageRequest{Name: name, Description: "cloudtest", Architecture: "x86_64", VirtualizationType: "hvm",
		RootDeviceName: "/dev/sda1", Tags: tags,
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: snap, VolumeSizeGiB: 8, DeleteOnTermination: true}}}
}

// host: Host answers, the same every time, and a call cancelled before it
// answered does not spoil the calls after it.
func (s *suite) host(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	s.c.Host(cancelled) // may fail; must not be remembered
	ctx := context.Background()
	h, err := s.c.Host(ctx)
	if err != nil {
		t.Fatalf("Host after a cancelled Host: %v", err)
	}
	if h.Region == "" || h.AvailabilityZone == "" {
		t.Errorf("Host: %+v", h)
	}
	if again, err := s.c.Host(ctx); err != nil || again != h {
		t.Errorf("Host again: %+v %v, first %+v", again, err, h)
	}
}

// notFound: every method that names a missing image, snapshot or volume
// wraps plugin.ErrNotFound, but the two undos, which return nil.
func (s *suite) notFound(t *testing.T) {
	ctx := context.Background()
	ami, snap, vol := ids.New("ami"), ids.New("snap"), ids.New("vol")
	c := s.c
	for _, tc := range []struct {
		what string
		call func() error
	}{
		{"Image by id", func() error { _, err := c.Image(ctx, plugin.ImageQuery{ID: ami}); return err }},
		{"Image by name", func() error { _, err := c.Image(ctx, plugin.ImageQuery{Name: unique("cloudtest-none")}); return err }},
		{"Snapshot", func() error { _, err := c.Snapshot(ctx, snap); return err }},
		{"Volume", func() error { _, err := c.Volume(ctx, vol); return err }},
		{"DeregisterImage", func() error { return c.DeregisterImage(ctx, ami) }},
		{"DeleteSnapshot", func() error { return c.DeleteSnapshot(ctx, snap) }},
		{"DeleteVolume", func() error { return c.DeleteVolume(ctx, vol) }},
		{"CreateVolume from a missing snapshot", func() error {
			v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: snap})
			if err == nil {
				c.DeleteVolume(ctx, v.ID)
			}
			return err
		}},
		{"CreateSnapshot of a missing volume", func() error {
			sn, err := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: vol})
			if err == nil {
				c.DeleteSnapshot(ctx, sn.ID)
			}
			return err
		}},
		{"AttachVolume", func() error { _, err := c.AttachVolume(ctx, vol, s.f.Device); return err }},
		{"CreateTags on a missing image", func() error { return c.CreateTags(ctx, ami, plugin.Tags{"k": "v"}) }},
		{"CreateTags on a missing snapshot", func() error { return c.CreateTags(ctx, snap, plugin.Tags{"k": "v"}) }},
		{"CreateTags on a missing volume", func() error { return c.CreateTags(ctx, vol, plugin.Tags{"k": "v"}) }},
	} {
		isNotFound(t, tc.what, tc.call())
	}
	if err := c.DetachVolume(ctx, vol); err != nil {
		t.Errorf("DetachVolume of a missing volume: %v, want nil (detached already)", err)
	}
	if err := c.DeleteTags(ctx, vol, "k"); err != nil {
		t.Errorf("DeleteTags on a missing volume: %v, want nil (nothing carries the key)", err)
	}
	if _, err := c.Image(ctx, plugin.ImageQuery{}); err == nil || errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("Image with neither id nor name: %v, want an error that is not ErrNotFound", err)
	}
	if ims, err := c.FindImages(ctx, plugin.Tags{"cloudtest-run": unique("none")}); err != nil || len(ims) != 0 {
		t.Errorf("FindImages matching nothing: %d images, %v; want none and nil", len(ims), err)
	}
}

// cancelled: with ctx done, every method returns an error wrapping
// context.Canceled, and changes nothing.
func (s *suite) cancelled(t *testing.T) {
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot, Tags: plugin.Tags{"k": "v"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := s.c
	for _, tc := range []struct {
		what string
		call func() error
	}{
		{"Image", func() error { _, err := c.Image(ctx, plugin.ImageQuery{Name: unique("cloudtest-none")}); return err }},
		{"FindImages", func() error { _, err := c.FindImages(ctx, plugin.Tags{"k": "v"}); return err }},
		{"Snapshot", func() error { _, err := c.Snapshot(ctx, s.f.BaseSnapshot); return err }},
		{"Volume", func() error { _, err := c.Volume(ctx, v.ID); return err }},
		{"CreateVolume", func() error {
			nv, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot})
			if err == nil {
				c.DeleteVolume(context.Background(), nv.ID)
			}
			return err
		}},
		{"CreateTags", func() error { return c.CreateTags(ctx, v.ID, plugin.Tags{"k": "changed"}) }},
		{"DeleteTags", func() error { return c.DeleteTags(ctx, v.ID, "k") }},
		{"DeleteVolume", func() error { return c.DeleteVolume(ctx, v.ID) }},
	} {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", tc.what, err)
		}
	}
	got, err := c.Volume(context.Background(), v.ID)
	if err != nil || got.Tags["k"] != "v" {
		t.Errorf("after cancelled calls the volume is %+v, %v; want it untouched", got, err)
	}
}
