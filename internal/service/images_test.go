package service

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

func TestRemoveImageCascades(t *testing.T) {
	ctx := context.Background()
	f, rec := recorded()
	one, two := addImage(t, f, "one", plugin.Tags{}), addImage(t, f, "two", plugin.Tags{})
	r, err := RemoveImage(ctx, f, nil, "one", false)
	snaps := []string{one.BlockDevices[0].SnapshotID, one.BlockDevices[1].SnapshotID}
	if err != nil || r.Image != one.ID || !reflect.DeepEqual(r.Snapshots, snaps) {
		t.Errorf("remove one: %+v %v", r, err)
	}
	if r, err := RemoveImage(ctx, f, nil, two.ID, true); err != nil || r.Image == "" || len(r.Snapshots) != 0 {
		t.Errorf("remove two keeping snapshots: %+v %v", r, err)
	}
	want := []string{"DeregisterImage " + one.ID, "DeleteSnapshot " + snaps[0], "DeleteSnapshot " + snaps[1], "DeregisterImage " + two.ID}
	if got := callsOf(rec, "DeregisterImage", "DeleteSnapshot"); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if r, err := RemoveImage(ctx, f, nil, "one", false); !errors.Is(err, plugin.ErrNotFound) || r.Image != "" {
		t.Errorf("remove a removed image: %+v %v", r, err)
	}
}

// A snapshot that cannot go does not keep the others.
func TestRemoveImageGoesOnPastASnapshot(t *testing.T) {
	f, rec := recorded()
	one := addImage(t, f, "one", plugin.Tags{})
	rec.FailOn("DeleteSnapshot "+one.BlockDevices[0].SnapshotID, nil)
	r, err := RemoveImage(context.Background(), f, nil, "one", false)
	if err == nil || r.Image == "" || !reflect.DeepEqual(r.Snapshots, []string{one.BlockDevices[1].SnapshotID}) {
		t.Errorf("%+v %v", r, err)
	}
}

func TestLineage(t *testing.T) {
	f := fakecloud.New()
	found := addImage(t, f, "found", plugin.Tags{"role": "foundation"})
	base := addImage(t, f, "base", plugin.Tags{"role": "base", "channel": "release", "lineage": found.ID})
	app := addImage(t, f, "app", plugin.Tags{"role": "app", "lineage": "ami-09999999," + found.ID + "," + base.ID})
	got := Lineage(context.Background(), f, app)
	want := []LineageEntry{
		{ID: "ami-09999999", Gone: true},
		{ID: found.ID, Name: "found", Role: "foundation"},
		{ID: base.ID, Name: "base", Role: "base", Channel: "release"},
		{ID: app.ID, Name: "app", Role: "app"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lineage %+v\nwant %+v", got, want)
	}
}

func TestFindByLabel(t *testing.T) {
	f := fakecloud.New()
	addImage(t, f, "base-1", plugin.Tags{"family": "base", "channel": "release"})
	addImage(t, f, "base-2", plugin.Tags{"family": "base", "channel": "candidate"})
	if im, err := Find(context.Background(), f, "base:release"); err != nil || im.Name != "base-1" {
		t.Errorf("base:release is %v, %v", im, err)
	}
}

func TestImageFilter(t *testing.T) {
	got := ImageFilter("base", "", "app", plugin.Tags{"team": "x"})
	if want := (plugin.Tags{"family": "base", "role": "app", "team": "x"}); !reflect.DeepEqual(got, want) {
		t.Errorf("filter %v", got)
	}
}

func TestVolumes(t *testing.T) {
	ctx := context.Background()
	f := fakecloud.New()
	one := addImage(t, f, "one", plugin.Tags{})
	if _, err := f.RegisterImage(ctx, plugin.ImageRequest{Name: "bare"}); err != nil {
		t.Fatal(err)
	}
	v, err := CreateExternalVolume(ctx, f, "one", 3)
	if err != nil || v.SnapshotID != one.Root().SnapshotID || v.SizeBytes != 3<<30 || v.Tags[owner.Purpose] != owner.PurposeExternal || v.Tags["ami"] != one.ID {
		t.Fatalf("volume %+v %v", v, err)
	}
	if _, err := CreateExternalVolume(ctx, f, "bare", 0); err == nil {
		t.Error("a volume of an image without a root snapshot")
	}
	orphan, err := f.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 1 << 30, Tags: plugin.Tags{"bake": "bake-gone"}})
	if err != nil {
		t.Fatal(err)
	}
	f.Running["bake-running"] = true
	if _, err := f.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 1 << 30, Tags: plugin.Tags{"bake": "bake-running"}}); err != nil {
		t.Fatal(err)
	}
	orphans, err := OrphanedVolumes(ctx, f)
	if err != nil || !reflect.DeepEqual(orphans, []string{orphan.ID}) {
		t.Errorf("orphaned %v, %v", orphans, err)
	}
	done, err := RemoveVolumes(ctx, f, append([]string{"vol-gone"}, orphans...))
	if err == nil || !reflect.DeepEqual(done, []string{orphan.ID}) || len(f.Volumes()) != 2 {
		t.Errorf("removed %v (%v); left %d volumes", done, err, len(f.Volumes()))
	}
}
