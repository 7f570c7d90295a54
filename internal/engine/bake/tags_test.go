package bake

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// The tag rules, one case per rule: what an image and its snapshot get.
func TestTags(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	foundation := &plugin.Image{ID: "ami-f", Name: "debian-12-s", Tags: plugin.Tags{channels.TagRole: channels.RoleFoundation, "appversion": "debian-12-s", "boot": "uefi"}}
	base := &plugin.Image{ID: "ami-b", Name: "base-1.0-1-x86_64-s-ebs", Tags: plugin.Tags{
		channels.TagRole: channels.RoleBase, "appversion": "base-1.0-1", "base_ami_version": "base-1.0-1", "lineage": "ami-f"}}
	noVersion := &plugin.Image{ID: "ami-n", Name: "imported", Tags: plugin.Tags{"appversion": "imported-1"}}
	hello := naming.Fields{Name: "hello", Version: "2.10", Release: "3", Arch: "x86_64", Suffix: "s", StoreType: "ebs"}
	app := plugin.Tags{
		"creator": "me", "appversion": "hello-2.10-3", "base_ami_id": "ami-b", "base_ami_name": "base-1.0-1-x86_64-s-ebs",
		"base_ami_version": "base-1.0-1", "family": "hello", "role": "app", "lineage": "ami-f,ami-b",
	}
	with := func(t plugin.Tags, kv ...string) plugin.Tags {
		out := maps.Clone(t)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	for _, tc := range []struct {
		what string
		in   TagInput
		// own are the tags on both, creation_time and bake/host aside.
		own plugin.Tags
		// noHost: the cloud could not say the host, so the snapshot has none.
		noHost bool
	}{
		{"an app on a base: the base's base_ami_version, the lineage grows",
			TagInput{Request: Request{Creator: "me"}, Base: base, Fields: hello}, app, false},
		{"a base on a foundation starts its own base_ami_version; the boot tag is the disk's, not the base's",
			TagInput{Request: Request{Creator: "me"}, Base: foundation, Fields: hello, Boot: "uefi"},
			with(app, "base_ami_id", "ami-f", "base_ami_name", "debian-12-s", "base_ami_version", "hello-2.10-3", "role", "base", "lineage", "ami-f", "boot", "uefi"), false},
		{"a base without base_ami_version: its appversion",
			TagInput{Request: Request{Creator: "me"}, Base: noVersion, Fields: hello},
			with(app, "base_ami_id", "ami-n", "base_ami_name", "imported", "base_ami_version", "imported-1", "lineage", "ami-n"), false},
		{"the boot loaders found on the disk, whatever the base's tag says",
			TagInput{Request: Request{Creator: "me"}, Base: foundation, Fields: hello, Boot: "bios+uefi"},
			with(app, "base_ami_id", "ami-f", "base_ami_name", "debian-12-s", "base_ami_version", "hello-2.10-3", "role", "base", "lineage", "ami-f", "boot", "bios+uefi"), false},
		{"-n names the family; -b FAMILY:LABEL and the partition are recorded",
			TagInput{Request: Request{Creator: "me", Name: "web", BaseName: "base", BaseLabel: "release", Partition: 2}, Base: base, Fields: hello},
			with(app, "family", "web", "base_ami_label", "base:release", "root_partition", "2"), false},
		{"the user's tags go on both; the host is left out when unknown",
			TagInput{Request: Request{Creator: "me", Tags: map[string]string{"team": "core"}}, Base: base, Fields: hello},
			with(app, "team", "core"), true},
	} {
		tc.in.Request.BakeID, tc.in.Now = "bake-1", now
		if !tc.noHost {
			tc.in.Host = &plugin.Host{InstanceID: "i-1"}
		}
		image, snapshot := Tags(tc.in)
		if want := with(tc.own, "creation_time", "2025-03-04 05:06:07 UTC"); !reflect.DeepEqual(image, want) {
			t.Errorf("%s: image tags\n got %v\nwant %v", tc.what, image, want)
		}
		want := with(tc.own, owner.Bake, "bake-1", owner.Host, "i-1")
		if tc.noHost {
			delete(want, owner.Host)
		}
		if !reflect.DeepEqual(snapshot, want) {
			t.Errorf("%s: snapshot tags\n got %v\nwant %v", tc.what, snapshot, want)
		}
	}
}

// Every tag a bake sets is in the one list of tool tags, so a user's tag
// can never be overwritten or dropped without a word.
func TestOwnTagsAreReserved(t *testing.T) {
	base := &plugin.Image{ID: "ami-1", Name: "b", Tags: plugin.Tags{"boot": "uefi", channels.TagRole: channels.RoleBase}}
	req := Request{BaseName: "fam", BaseLabel: "release", Partition: 2, Creator: "c", BakeID: "bake-1"}
	image, snapshot := Tags(TagInput{Request: req, Base: base, Fields: naming.Fields{Name: "p"}, Host: &plugin.Host{InstanceID: "i-1"}, Boot: "bios+uefi"})
	all := maps.Clone(image)
	maps.Copy(all, snapshot)
	for _, k := range slices.Sorted(maps.Keys(all)) {
		if _, ok := naming.Reserved(k, naming.ScopeBake); !ok {
			t.Errorf("the bake sets tag %q, which naming.ToolTags does not list", k)
		}
	}
	if n := len(image) + len(naming.LaterTags()); n != 15 {
		t.Errorf("a bake's image carries %d tags of its own; the tests and docs/tags.md say 15", n)
	}
}

// A bake whose package scripts had the network says so on its image.
func TestScriptNetworkTag(t *testing.T) {
	base := &plugin.Image{ID: "ami-n", Name: "imported", Tags: plugin.Tags{"appversion": "imported-1"}}
	f := naming.Fields{Name: "app", Version: "1"}
	if v, ok := ownTags(Request{}, base, f)["script_network"]; ok {
		t.Errorf("script_network=%q without --script-network", v)
	}
	if v := ownTags(Request{ScriptNetwork: true}, base, f)["script_network"]; v != "true" {
		t.Errorf("script_network=%q with --script-network", v)
	}
}
