package service

import (
	"context"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
)

// addImage registers an image in the fake cloud, with a root and a data
// snapshot, an ephemeral disk, the given tags and package manifest.
func addImage(t *testing.T, c *fakecloud.Cloud, name string, tags plugin.Tags, pkgs ...plugin.Package) *plugin.Image {
	t.Helper()
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	var snaps [2]string
	for i := range snaps {
		s, err := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: v.ID})
		if err != nil {
			t.Fatal(err)
		}
		snaps[i] = s.ID
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: name, RootDeviceName: "/dev/xvda", Tags: tags, Packages: pkgs,
		BlockDevices: []plugin.BlockDeviceMapping{
			{DeviceName: "/dev/xvda", SnapshotID: snaps[0]},
			{DeviceName: "/dev/xvdb", SnapshotID: snaps[1]},
			{DeviceName: "/dev/xvdc", VirtualName: "ephemeral0"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// recorded is a fake cloud whose calls rec records.
func recorded() (*fakecloud.Cloud, *fakecloud.Recorder) {
	c, rec := fakecloud.New(), &fakecloud.Recorder{}
	c.Hook = rec.Hook
	return c, rec
}

// callsOf are the calls recorded of the given methods, in order.
func callsOf(rec *fakecloud.Recorder, methods ...string) []string {
	var out []string
	for _, call := range rec.Calls() {
		for _, m := range methods {
			if strings.HasPrefix(call, m+" ") {
				out = append(out, call)
			}
		}
	}
	return out
}
