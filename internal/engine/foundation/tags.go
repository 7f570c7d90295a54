package foundation

import (
	"context"
	"strconv"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// TagSourceDateEpoch marks a reproducible foundation with its epoch.
const TagSourceDateEpoch = "source_date_epoch"

// ownTags are the tags a foundation sets on its image (creation_time
// aside) and its snapshot.
func ownTags(o Options, kernel string, packages, part int) plugin.Tags {
	tags := plugin.Tags{
		"creator": o.Creator, "appversion": o.Name + "-" + o.Suffix, channels.TagFamily: o.Name, channels.TagRole: channels.RoleFoundation,
		"distribution": "debian", "release": o.Release, "layout": o.Layout, "filesystem": o.FS, "kernel": kernel,
		"packages": strconv.Itoa(packages), "profile": o.Profile,
	}
	if part > 0 {
		tags["root_partition"] = strconv.Itoa(part)
	}
	if b := bootTag(o.Layout); b != "" {
		tags["boot"] = b
	}
	if e := o.SourceDateEpoch; e != nil {
		tags[TagSourceDateEpoch] = strconv.FormatInt(*e, 10)
	}
	return tags
}

// layoutPartition is the root filesystem's partition in a layout (0: the whole device).
func layoutPartition(layout string) int {
	return map[string]int{"gpt": 1, "uefi": 2, "hybrid": rootPart, "grub-uefi": rootPart}[layout]
}

// bootTag says which firmware boots a layout's disk: "bios+uefi", "uefi",
// or "" (no loader: the boot test boots its kernel directly).
func bootTag(layout string) string {
	return map[string]string{"hybrid": "bios+uefi", "uefi": "uefi", "grub-uefi": "uefi"}[layout]
}

// bootMode is the boot mode a layout's image is registered with.
func bootMode(layout string) string {
	return map[string]string{"hybrid": "uefi-preferred", "uefi": "uefi", "grub-uefi": "uefi"}[layout]
}

// checkInputs refuses, before any work, a user's tags that aminator sets
// or the cloud would refuse, and a taken name.
func checkInputs(ctx context.Context, env *bake.Environment, o Options, name string) error {
	if err := naming.CheckUserTags(o.Tags, naming.ScopeFoundation); err != nil {
		return &bake.UsageError{Err: err}
	}
	image, snapshot := ownTags(o, "", 0, layoutPartition(o.Layout)), ownTags(o, "", 0, layoutPartition(o.Layout))
	image["creation_time"] = ""
	bake.AttestTags(env, image, snapshot)
	if err := bake.CheckTags(plugin.LimitsOf(env.Cloud), o.Tags, map[string]plugin.Tags{"image": image, "snapshot": snapshot}); err != nil {
		return &bake.UsageError{Err: err}
	}
	return bake.CheckName(ctx, env.Cloud, name)
}

// tags are the tag rules of a foundation: the user's tags, and its own
// (ownTags) on both the image and its snapshot; the creation time on the
// image only.
func tags(o Options, kernel string, packages int, now time.Time) (image, snapshot plugin.Tags) {
	image = plugin.Tags{}
	for k, v := range o.Tags {
		image[k] = v
	}
	for k, v := range ownTags(o, kernel, packages, layoutPartition(o.Layout)) {
		image[k] = v
	}
	snapshot = plugin.Tags{}
	for k, v := range image {
		snapshot[k] = v
	}
	image["creation_time"] = naming.CreationTime(now)
	return image, snapshot
}
