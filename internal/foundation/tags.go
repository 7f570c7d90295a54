package foundation

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aminator-go/aminator/internal/bake"
	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
)

// ownTags are the tags a foundation sets on its image (creation_time
// aside) and its snapshot.
func ownTags(o Options, kernel string, packages, part int) plugin.Tags {
	tags := plugin.Tags{
		"creator": o.Creator, "appversion": o.Name + "-" + o.Suffix, channels.TagFamily: o.Name, channels.TagRole: channels.RoleFoundation,
		"distribution": "debian", "release": o.Release, "layout": o.Layout, "filesystem": o.FS, "kernel": kernel,
		"packages": strconv.Itoa(packages),
	}
	if part > 0 {
		tags["root_partition"] = strconv.Itoa(part)
	}
	if o.Layout == "uefi" {
		tags["boot"] = "uefi"
	}
	return tags
}

// layoutPartition is the root filesystem's partition in a layout (0: the whole device).
func layoutPartition(layout string) int {
	return map[string]int{"gpt": 1, "uefi": 2}[layout]
}

// checkInputs refuses, before any work, a user's tags that aminator sets
// or the cloud would refuse, and a taken name.
func checkInputs(ctx context.Context, env *bake.Environment, o Options, name string) error {
	if err := naming.CheckUserTags(o.Tags, naming.ScopeFoundation); err != nil {
		return &bake.UsageError{Err: err}
	}
	image, snapshot := ownTags(o, "", 0, layoutPartition(o.Layout)), ownTags(o, "", 0, layoutPartition(o.Layout))
	image["creation_time"] = ""
	if err := bake.CheckTags(plugin.LimitsOf(env.Cloud), o.Tags, map[string]plugin.Tags{"image": image, "snapshot": snapshot}); err != nil {
		return &bake.UsageError{Err: err}
	}
	return bake.CheckName(ctx, env.Cloud, name)
}

// register snapshots the volume and registers the foundation image with
// the user's tags and its own.
func register(ctx context.Context, p *pipeline.Pipeline, env *bake.Environment, o Options, res *Result, vol *plugin.Volume, size int64, name string, pkgs []plugin.Package, part int) error {
	kernel := res.Kernel
	if kernel == "" {
		kernel = "none"
	}
	tags := plugin.Tags{}
	for k, v := range o.Tags {
		tags[k] = v
	}
	for k, v := range ownTags(o, kernel, len(pkgs), part) {
		tags[k] = v
	}
	snapTags := plugin.Tags{}
	for k, v := range tags {
		snapTags[k] = v
	}
	tags["creation_time"] = naming.CreationTime(time.Now())
	return p.Stage(ctx, "snapshot and register", func(ctx context.Context) error {
		snap, err := env.Finalizer.Snapshot(ctx, plugin.SnapshotVolume{Volume: vol, ImageName: name, Tags: snapTags})
		if err != nil {
			return err
		}
		p.Rollback("delete snapshot "+snap.ID, func(ctx context.Context) error { return env.Cloud.DeleteSnapshot(ctx, snap.ID) })
		res.Image, err = env.Finalizer.Register(ctx, plugin.RegisterSnapshot{
			Snapshot: snap, SizeBytes: size, VolumeType: "local",
			Image: plugin.ImageRequest{
				Name:         name,
				Description:  fmt.Sprintf("foundation: Debian %s %s (%s, %s, kernel %s)", o.Release, o.Arch, o.Layout, o.FS, kernel),
				Architecture: o.Arch, VirtualizationType: "hvm", Tags: tags, Packages: pkgs, BootMode: bootMode(o.Layout),
			},
		})
		if err != nil {
			return err
		}
		im := res.Image
		p.Rollback("deregister image "+im.ID, func(ctx context.Context) error { return env.Cloud.DeregisterImage(ctx, im.ID) })
		return nil
	})
}
