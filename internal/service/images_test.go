package service

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

func TestRemoveImageCascades(t *testing.T) {
	ctx := context.Background()
	f := &fakeCloud{images: []*plugin.Image{image(1, "one", plugin.Tags{}), image(2, "two", plugin.Tags{})}}
	r, err := RemoveImage(ctx, f, "one", false)
	if err != nil || r.Image != "ami-00000000000000001" || !reflect.DeepEqual(r.Snapshots, []string{"snap-00000000000000001", "snap-00000000000000101"}) {
		t.Errorf("remove one: %+v %v", r, err)
	}
	if r, err := RemoveImage(ctx, f, "ami-00000000000000002", true); err != nil || r.Image == "" || len(r.Snapshots) != 0 {
		t.Errorf("remove two keeping snapshots: %+v %v", r, err)
	}
	want := []string{"deregister ami-00000000000000001", "delete snap-00000000000000001", "delete snap-00000000000000101", "deregister ami-00000000000000002"}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if r, err := RemoveImage(ctx, f, "one", false); !errors.Is(err, plugin.ErrNotFound) || r.Image != "" {
		t.Errorf("remove a removed image: %+v %v", r, err)
	}
}

// A snapshot that cannot go does not keep the others.
func TestRemoveImageGoesOnPastASnapshot(t *testing.T) {
	f := &fakeCloud{images: []*plugin.Image{image(1, "one", plugin.Tags{})}, undeletable: map[string]bool{"snap-00000000000000001": true}}
	r, err := RemoveImage(context.Background(), f, "one", false)
	if err == nil || r.Image == "" || !reflect.DeepEqual(r.Snapshots, []string{"snap-00000000000000101"}) {
		t.Errorf("%+v %v", r, err)
	}
}

func TestLineage(t *testing.T) {
	found := image(1, "found", plugin.Tags{"role": "foundation"})
	base := image(2, "base", plugin.Tags{"role": "base", "channel": "release", "lineage": found.ID})
	app := image(3, "app", plugin.Tags{"role": "app", "lineage": "ami-00000000000000009," + found.ID + "," + base.ID})
	f := &fakeCloud{images: []*plugin.Image{app, base, found}}
	got := Lineage(context.Background(), f, app)
	want := []LineageEntry{
		{ID: "ami-00000000000000009", Gone: true},
		{ID: found.ID, Name: "found", Role: "foundation"},
		{ID: base.ID, Name: "base", Role: "base", Channel: "release"},
		{ID: app.ID, Name: "app", Role: "app"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lineage %+v\nwant %+v", got, want)
	}
}

func TestFindByLabel(t *testing.T) {
	f := &fakeCloud{images: []*plugin.Image{
		image(2, "base-2", plugin.Tags{"family": "base", "channel": "candidate"}),
		image(1, "base-1", plugin.Tags{"family": "base", "channel": "release"}),
	}}
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
	f := &fakeCloud{images: []*plugin.Image{image(1, "one", plugin.Tags{}), {ID: "ami-00000000000000002", Name: "bare"}}}
	v, err := CreateExternalVolume(ctx, f, "one", 3)
	if err != nil || v.SnapshotID != "snap-00000000000000001" || v.SizeBytes != 3<<30 || v.Tags[owner.Purpose] != owner.PurposeExternal || v.Tags["ami"] != "ami-00000000000000001" {
		t.Fatalf("volume %+v %v", v, err)
	}
	if _, err := CreateExternalVolume(ctx, f, "bare", 0); err == nil {
		t.Error("a volume of an image without a root snapshot")
	}
	f.volumes = append(f.volumes, &plugin.Volume{ID: "vol-orphan", Orphaned: true}, &plugin.Volume{ID: "vol-busy"})
	args := []string{"vol-gone"}
	done, err := RemoveVolumes(ctx, f, args, true)
	if err == nil || !reflect.DeepEqual(done, []string{"vol-orphan"}) || len(f.volumes) != 2 || len(args) != 1 {
		t.Errorf("removed %v (%v); left %d volumes", done, err, len(f.volumes))
	}
}
