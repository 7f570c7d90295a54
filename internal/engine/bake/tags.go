package bake

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// baseVersion names the base a lineage is built on: the base's own
// base_ami_version, else its appversion.
func baseVersion(base *plugin.Image) string {
	if v := base.Tags["base_ami_version"]; v != "" {
		return v
	}
	return base.Tags["appversion"]
}

// TagInput is what a bake's tags are made of.
type TagInput struct {
	// Request gives the user's tags, the creator, the name given (-n), how
	// the base was named (-b FAMILY:LABEL), the root partition and the
	// bake's id.
	Request Request
	// Base is the image baked on.
	Base *plugin.Image
	// Fields are the image name's: the installed package's name, version
	// and release, the architecture, the suffix and the store type.
	Fields naming.Fields
	// Host is the build host; nil when the cloud cannot say.
	Host *plugin.Host
	// Boot is the boot loaders found on the image's disk, the boot tag's
	// value (bootdisk.Loaders.Tag); "" leaves the tag out.
	Boot string
	// Now is when the image is registered.
	Now time.Time
}

// Tags are the tag rules of a bake. The image gets the user's tags, the
// lineage it is baked from (base_ami_*, family, role, lineage, the root
// partition), what it holds (appversion) and how its disk boots (boot),
// its creator and its creation time. The snapshot gets the same but the creation time, plus
// the bake's id and the build host, by which gc finds the snapshot of a
// bake killed before it registered. Aminator's own tags win over the
// user's, which may not name them (naming.CheckUserTags).
func Tags(in TagInput) (image, snapshot plugin.Tags) {
	image = plugin.Tags{}
	for k, v := range in.Request.Tags {
		image[k] = v
	}
	for k, v := range ownTags(in.Request, in.Base, in.Fields) {
		image[k] = v
	}
	if in.Boot != "" {
		image["boot"] = in.Boot
	}
	snapshot = plugin.Tags{}
	for k, v := range image {
		snapshot[k] = v
	}
	snapshot[owner.Bake] = in.Request.BakeID
	if in.Host != nil {
		snapshot[owner.Host] = in.Host.InstanceID
	}
	image["creation_time"] = naming.CreationTime(in.Now)
	return image, snapshot
}

// ownTags are the tags a bake sets on both its image and its snapshot:
// the lineage it is baked from and what it holds.
func ownTags(req Request, base *plugin.Image, f naming.Fields) plugin.Tags {
	// Apps copy their base's base_ami_version, and a base (baked on a
	// foundation) starts its own from its meta package's version.
	ownBaseVersion := baseVersion(base)
	if channels.ChildRole(base) == channels.RoleBase {
		ownBaseVersion = naming.AppVersion(f)
	}
	family := req.Name
	if family == "" {
		family = f.Name
	}
	tags := plugin.Tags{
		"creator": req.Creator, "appversion": naming.AppVersion(f), "base_ami_id": base.ID,
		"base_ami_name": base.Name, "base_ami_version": ownBaseVersion,
		channels.TagFamily: family, channels.TagRole: channels.ChildRole(base), "lineage": channels.ChildLineage(base),
	}
	if req.BaseLabel != "" {
		tags["base_ami_label"] = req.BaseName + ":" + req.BaseLabel
	}
	if req.Partition > 0 {
		tags["root_partition"] = strconv.Itoa(req.Partition)
	}
	if req.ScriptNetwork { // package scripts ran with the network (issue 10): say so on the image
		tags["script_network"] = "true"
	}
	return tags
}

// CheckTags checks a user's tags against a cloud's limits, given the tags
// aminator sets itself on each resource that carries the user's tags (the
// image and its snapshot): every key and value, aminator's own values
// too, and the count on each resource. An image's count keeps room for
// the tags promote and test add later.
func CheckTags(l plugin.TagLimits, user plugin.Tags, own map[string]plugin.Tags) error {
	for _, k := range slices.Sorted(maps.Keys(user)) {
		if err := l.CheckTag(k, user[k]); err != nil {
			return err
		}
	}
	for _, res := range slices.Sorted(maps.Keys(own)) {
		for _, k := range slices.Sorted(maps.Keys(own[res])) {
			if err := l.CheckTag(k, own[res][k]); err != nil {
				if t, ok := naming.Reserved(k, naming.ScopeAll); ok && t.Flag != "" {
					return fmt.Errorf("%w (set with %s)", err, t.Flag)
				}
				return err
			}
		}
		keys := slices.Sorted(maps.Keys(own[res]))
		if res == "image" {
			keys = append(keys, naming.LaterTags()...)
		}
		if n := len(user) + len(keys); l.MaxTags > 0 && n > l.MaxTags {
			return fmt.Errorf("too many tags: %d given, and aminator sets %d of its own on the %s (%s), %d in all; the cloud takes at most %d, so give at most %d",
				len(user), len(keys), res, strings.Join(keys, ", "), n, l.MaxTags, max(0, l.MaxTags-len(keys)))
		}
	}
	return nil
}
