package fakecloud

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// The fake is as strict as a real cloud where an undo in the wrong order
// would show, and every call passes the hook.
func TestStrictAndRecorded(t *testing.T) {
	ctx := context.Background()
	c := New()
	base := c.AddImage("base", 1<<30, nil)
	rec := &Recorder{}
	c.Hook = rec.Hook
	v, err := c.VolumePlugin().Create(ctx, base, 0, plugin.Tags{owner.Bake: "b"})
	if err != nil || v.SizeBytes != 1<<30 || v.SnapshotID != base.Root().SnapshotID {
		t.Fatalf("create: %+v %v", v, err)
	}
	dev, err := c.VolumePlugin().Attach(ctx, v, "")
	if err != nil || dev != "/dev/fake/"+v.ID {
		t.Fatalf("attach: %q %v", dev, err)
	}
	if err := c.DeleteVolume(ctx, v.ID); err == nil {
		t.Error("an attached volume was deleted")
	}
	s, _ := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: v.ID})
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "x", RootDeviceName: "/dev/sda1", BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: s.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "x"}); !errors.Is(err, plugin.ErrExists) {
		t.Errorf("a taken name: %v", err)
	}
	if err := c.DeleteSnapshot(ctx, s.ID); err == nil {
		t.Error("a snapshot an image uses was deleted")
	}
	rec.FailOn("DeregisterImage", nil)
	if err := c.DeregisterImage(ctx, im.ID); err == nil {
		t.Error("the injected failure did not fail")
	}
	for _, err := range []error{c.DeregisterImage(ctx, im.ID), c.DeleteSnapshot(ctx, s.ID), c.VolumePlugin().Detach(ctx, v), c.VolumePlugin().Delete(ctx, v)} {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := c.Image(ctx, plugin.ImageQuery{ID: im.ID}); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("a deregistered image: %v", err)
	}
	want := []string{"Volumes.Create " + base.ID, "Volumes.Attach " + v.ID, "DeleteVolume " + v.ID, "CreateSnapshot " + v.ID, "RegisterImage x", "RegisterImage x",
		"DeleteSnapshot " + s.ID, "DeregisterImage " + im.ID, "DeregisterImage " + im.ID, "DeleteSnapshot " + s.ID, "Volumes.Detach " + v.ID, "Volumes.Delete " + v.ID, "Image " + im.ID}
	if got := rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
	if len(c.Images()) != 1 || len(c.Snapshots()) != 1 || len(c.Volumes()) != 0 {
		t.Error("more than the base is left")
	}
}
