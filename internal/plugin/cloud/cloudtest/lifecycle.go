package cloudtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

func sameTags(t *testing.T, what string, got, want plugin.Tags) {
	t.Helper()
	if !maps.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s: tags %v, want %v", what, got, want)
	}
}

// volumes: made from a snapshot (its size, or larger) or empty, described,
// deleted once; a second delete says not found.
func (s *suite) volumes(t *testing.T) {
	ctx := context.Background()
	base, err := s.c.Snapshot(ctx, s.f.BaseSnapshot)
	if err != nil {
		t.Fatalf("the fixture's base snapshot: %v", err)
	}
	tags := plugin.Tags{"cloudtest": "volumes", "k": "v"}
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: base.ID, Tags: tags})
	if v.ID == "" || v.State != "available" || v.SnapshotID != base.ID || v.SizeBytes != base.SizeBytes {
		t.Errorf("CreateVolume from %s (%d bytes): %+v", base.ID, base.SizeBytes, v)
	}
	sameTags(t, "CreateVolume", v.Tags, tags)
	got, err := s.c.Volume(ctx, v.ID)
	if err != nil || got.ID != v.ID || got.State != "available" || got.SizeBytes != v.SizeBytes {
		t.Errorf("Volume: %+v %v, want %+v", got, err, v)
	} else {
		sameTags(t, "Volume", got.Tags, tags)
	}

	grown := s.newVolume(t, plugin.VolumeRequest{SnapshotID: base.ID, SizeBytes: base.SizeBytes + 1<<30})
	if grown.SizeBytes != base.SizeBytes+1<<30 {
		t.Errorf("CreateVolume of %d bytes from the snapshot: %d bytes", base.SizeBytes+1<<30, grown.SizeBytes)
	}
	empty := s.newVolume(t, plugin.VolumeRequest{SizeBytes: 1 << 30})
	if empty.SnapshotID != "" || empty.SizeBytes != 1<<30 || empty.State != "available" {
		t.Errorf("CreateVolume, empty, 1 GiB: %+v", empty)
	}

	if err := s.c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	_, err = s.c.Volume(ctx, v.ID)
	isNotFound(t, "Volume after DeleteVolume", err)
	isNotFound(t, "DeleteVolume again", s.c.DeleteVolume(ctx, v.ID))
}

// attach: attached once, refused a second attachment and a delete while
// attached, detached (twice: the second is a no-op), then deleted.
func (s *suite) attach(t *testing.T) {
	if !s.f.Attach {
		t.Skip("this cloud cannot attach volumes here (the local cloud needs root for loop devices)")
	}
	ctx := context.Background()
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot})
	a, err := s.c.AttachVolume(ctx, v.ID, s.f.Device)
	if err != nil {
		t.Fatalf("AttachVolume: %v", err)
	}
	t.Cleanup(func() { s.c.DetachVolume(context.Background(), v.ID) })
	if a.VolumeID != v.ID || a.Device == "" {
		t.Errorf("AttachVolume: %+v", a)
	}
	if got, err := s.c.Volume(ctx, v.ID); err != nil || got.State != "in-use" || got.Device == "" {
		t.Errorf("Volume once attached: %+v %v", got, err)
	}
	if s.f.Reattaches {
		t.Log("not checked: a second AttachVolume is refused (the test double attaches again)")
	} else if _, err := s.c.AttachVolume(ctx, v.ID, s.f.Device); err == nil {
		t.Error("AttachVolume of an attached volume succeeded")
	}
	refused(t, "DeleteVolume of an attached volume", s.c.DeleteVolume(ctx, v.ID))
	if err := s.c.DetachVolume(ctx, v.ID); err != nil {
		t.Fatalf("DetachVolume: %v", err)
	}
	if got, err := s.c.Volume(ctx, v.ID); err != nil || got.State != "available" {
		t.Errorf("Volume once detached: %+v %v", got, err)
	}
	if err := s.c.DetachVolume(ctx, v.ID); err != nil {
		t.Errorf("DetachVolume of a detached volume: %v, want nil", err)
	}
	if err := s.c.DeleteVolume(ctx, v.ID); err != nil {
		t.Errorf("DeleteVolume once detached: %v", err)
	}
}

// snapshots: made of a volume, completed, described, deleted once; a
// second delete says not found.
func (s *suite) snapshots(t *testing.T) {
	ctx := context.Background()
	tags := plugin.Tags{"cloudtest": "snapshots", "k": "v"}
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot})
	sn, err := s.c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: v.ID, Description: "cloudtest", Tags: tags})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	gone(t, "delete snapshot "+sn.ID, func(ctx context.Context) error { return s.c.DeleteSnapshot(ctx, sn.ID) })
	if sn.ID == "" || sn.State != "completed" || sn.VolumeID != v.ID || sn.SizeBytes != v.SizeBytes {
		t.Errorf("CreateSnapshot of %s (%d bytes): %+v", v.ID, v.SizeBytes, sn)
	}
	sameTags(t, "CreateSnapshot", sn.Tags, tags)
	got, err := s.c.Snapshot(ctx, sn.ID)
	if err != nil || got.ID != sn.ID || got.State != "completed" || got.VolumeID != v.ID {
		t.Errorf("Snapshot: %+v %v, want %+v", got, err, sn)
	} else {
		sameTags(t, "Snapshot", got.Tags, tags)
	}
	if err := s.c.DeleteSnapshot(ctx, sn.ID); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	_, err = s.c.Snapshot(ctx, sn.ID)
	isNotFound(t, "Snapshot after DeleteSnapshot", err)
	isNotFound(t, "DeleteSnapshot again", s.c.DeleteSnapshot(ctx, sn.ID))
}

// images: registered, found by id and by name, its name then taken,
// deregistered once; a second deregister says not found.
func (s *suite) images(t *testing.T) {
	ctx := context.Background()
	sn := s.newSnapshot(t, nil)
	name := unique("cloudtest-image")
	tags := plugin.Tags{"cloudtest": "images", "k": "v"}
	im := s.newImage(t, name, sn.ID, tags)
	if im.ID == "" || im.Name != name || im.State != "available" || im.RootDeviceName != "/dev/sda1" || im.Root() == nil {
		t.Errorf("RegisterImage: %+v", im)
	}
	sameTags(t, "RegisterImage", im.Tags, tags)
	byID, err := s.c.Image(ctx, plugin.ImageQuery{ID: im.ID})
	if err != nil || byID.ID != im.ID || byID.Name != name || byID.Root() == nil {
		t.Errorf("Image by id: %+v %v", byID, err)
	} else {
		sameTags(t, "Image by id", byID.Tags, tags)
	}
	if s.f.IgnoresMappings {
		t.Log("not checked: the image's root is the snapshot registered (the test double ignores mappings)")
	} else {
		for what, x := range map[string]*plugin.Image{"RegisterImage": im, "Image by id": byID} {
			if x != nil && x.Root() != nil && x.Root().SnapshotID != sn.ID {
				t.Errorf("%s: root snapshot %s, want %s", what, x.Root().SnapshotID, sn.ID)
			}
		}
	}
	if byName, err := s.c.Image(ctx, plugin.ImageQuery{Name: name}); err != nil || byName.ID != im.ID {
		t.Errorf("Image by name: %+v %v", byName, err)
	}
	if dup, err := s.c.RegisterImage(ctx, imageRequest(name, sn.ID, nil)); !errors.Is(err, plugin.ErrExists) {
		if err == nil {
			s.c.DeregisterImage(ctx, dup.ID)
		}
		t.Errorf("RegisterImage of a taken name: %v, want an error wrapping plugin.ErrExists", err)
	}
	if err := s.c.DeregisterImage(ctx, im.ID); err != nil {
		t.Fatalf("DeregisterImage: %v", err)
	}
	_, err = s.c.Image(ctx, plugin.ImageQuery{ID: im.ID})
	isNotFound(t, "Image by id after DeregisterImage", err)
	_, err = s.c.Image(ctx, plugin.ImageQuery{Name: name})
	isNotFound(t, "Image by name after DeregisterImage", err)
	isNotFound(t, "DeregisterImage again", s.c.DeregisterImage(ctx, im.ID))
	if _, err := s.c.Snapshot(ctx, sn.ID); err != nil {
		t.Errorf("the snapshot of a deregistered image: %v, want it kept", err)
	}
}

// findImages: every image carrying all the tags, newest first.
func (s *suite) findImages(t *testing.T) {
	ctx := context.Background()
	sn := s.newSnapshot(t, nil)
	run := unique("run")
	var made []string
	for i := range 3 {
		if i > 0 {
			time.Sleep(s.f.Tick)
		}
		im := s.newImage(t, unique("cloudtest-find"), sn.ID, plugin.Tags{"cloudtest-run": run, "n": fmt.Sprint(i)})
		made = append(made, im.ID)
	}
	ims, err := s.c.FindImages(ctx, plugin.Tags{"cloudtest-run": run})
	if err != nil {
		t.Fatalf("FindImages: %v", err)
	}
	var got []string
	for _, im := range ims {
		got = append(got, im.ID)
	}
	if want := []string{made[2], made[1], made[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FindImages: %v, want %v (newest first)", got, want)
	}
	ims, err = s.c.FindImages(ctx, plugin.Tags{"cloudtest-run": run, "n": "1"})
	if err != nil || len(ims) != 1 || ims[0].ID != made[1] {
		t.Errorf("FindImages with two tags: %d images %v, want %s", len(ims), err, made[1])
	}
}

// tags: added and replaced on every kind of resource, removed by key;
// both may be repeated.
func (s *suite) tags(t *testing.T) {
	ctx := context.Background()
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot, Tags: plugin.Tags{"a": "1"}})
	sn := s.newSnapshot(t, plugin.Tags{"a": "1"})
	im := s.newImage(t, unique("cloudtest-tags"), sn.ID, plugin.Tags{"a": "1"})
	read := map[string]func() (plugin.Tags, error){
		v.ID: func() (plugin.Tags, error) {
			x, err := s.c.Volume(ctx, v.ID)
			if err != nil {
				return nil, err
			}
			return x.Tags, nil
		},
		sn.ID: func() (plugin.Tags, error) {
			x, err := s.c.Snapshot(ctx, sn.ID)
			if err != nil {
				return nil, err
			}
			return x.Tags, nil
		},
		im.ID: func() (plugin.Tags, error) {
			x, err := s.c.Image(ctx, plugin.ImageQuery{ID: im.ID})
			if err != nil {
				return nil, err
			}
			return x.Tags, nil
		},
	}
	for id, get := range read {
		check := func(step string, want plugin.Tags) {
			t.Helper()
			got, err := get()
			if err != nil {
				t.Errorf("%s %s: %v", id, step, err)
				return
			}
			sameTags(t, id+" "+step, got, want)
		}
		for range 2 {
			if err := s.c.CreateTags(ctx, id, plugin.Tags{"a": "2", "b": "3"}); err != nil {
				t.Errorf("CreateTags on %s: %v", id, err)
			}
			check("after CreateTags", plugin.Tags{"a": "2", "b": "3"})
		}
		for range 2 {
			if err := s.c.DeleteTags(ctx, id, "a", "absent"); err != nil {
				t.Errorf("DeleteTags on %s: %v", id, err)
			}
			check("after DeleteTags", plugin.Tags{"b": "3"})
		}
	}
}
