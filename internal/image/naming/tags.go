package naming

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// Scopes of a tool tag: which images aminator sets it on.
const (
	// ScopeAll: bakes and foundations.
	ScopeAll = ""
	// ScopeBake: only images (and snapshots) a bake makes.
	ScopeBake = "bake"
	// ScopeFoundation: only foundation images.
	ScopeFoundation = "foundation"
)

// ToolTag is a tag aminator itself sets on the images and snapshots it
// makes, or adds to them later (promote, test, push). A user's tags (--tag,
// context.tags, a bakery request) may not set it: aminator would overwrite
// or drop the value, or, worse, take it for its own (a channel=release on a
// request would make the image every team's base).
type ToolTag struct {
	// Key is the tag key; a Key ending in ':' is a prefix (pushed:REGION).
	Key string
	// Flag is how a user sets it instead ("" when only aminator decides).
	Flag string
	// From says what aminator makes it from.
	From string
	// Scope is ScopeAll, ScopeBake or ScopeFoundation.
	Scope string
	// Later marks tags added after registration (promote, test), which a
	// new image must keep room for.
	Later bool
}

// The tags that link the images one request baked for several
// architectures: the same arch_group value on each, and on each the
// others' ids as ARCH:ID, comma-separated.
const (
	TagArchGroup    = "arch_group"
	TagArchSiblings = "arch_siblings"
)

// ToolTags is the one list of the tags aminator sets; the CLI's bakes and
// foundations and the bakery all refuse them in a user's tags.
var ToolTags = []ToolTag{
	{Key: "creator", Flag: "-c/--creator"},
	{Key: "appversion", From: "the package's name, version and release (a foundation's name and suffix)"},
	{Key: "family", Flag: "-n/--name", From: "the image name given, else the package's name"},
	{Key: "role", From: "the base image's role: foundation, then base, then app"},
	{Key: "lineage", From: "the base image's lineage"},
	{Key: "channel", Flag: "aminate images promote IMAGE --label LABEL", Later: true},
	{Key: "creation_time", From: "the time the image is registered"},
	{Key: "root_partition", Flag: "--partition", From: "the base image's root_partition"},
	{Key: "boot", From: "the boot loaders found on the image's disk (bios+uefi, uefi, legacy-bios, none), or a foundation's layout"},
	{Key: "boot_test", Flag: "--test or aminate test IMAGE", Later: true},
	{Key: "boot_test_time", Flag: "--test or aminate test IMAGE", Later: true},
	{Key: "pushed:", Flag: "aminate push IMAGE"},
	{Key: "aminator:", From: "aminate push (the local image and snapshot an EC2 copy came from)"},
	{Key: "base_ami_id", Flag: "-B/--base-ami-id or -b/--base-ami-name", Scope: ScopeBake},
	{Key: "base_ami_name", Flag: "-B/--base-ami-id or -b/--base-ami-name", Scope: ScopeBake},
	{Key: "base_ami_version", From: "the base image's base_ami_version, else its appversion", Scope: ScopeBake},
	{Key: "base_ami_label", Flag: "-b FAMILY:LABEL or --label", Scope: ScopeBake},
	{Key: TagArchGroup, Flag: "--arch with a list", Scope: ScopeBake},
	{Key: TagArchSiblings, Flag: "--arch with a list", Scope: ScopeBake},
	{Key: owner.Bake, From: "the bake's id (on the snapshot)", Scope: ScopeBake},
	{Key: owner.Host, From: "the build host's instance id (on the snapshot)", Scope: ScopeBake},
	{Key: owner.DiskDigest, From: "the disk digest the bake read from its volume (on an EC2 snapshot)"},
	{Key: owner.SBOM, From: "the SPDX SBOM's S3 reference (EC2, attest.s3_bucket)"},
	{Key: owner.Provenance, From: "the provenance's S3 reference (EC2, attest.s3_bucket)"},
	{Key: owner.SBOMSHA256, From: "the SPDX SBOM's SHA-256 (EC2 without attest.s3_bucket)"},
	{Key: owner.ProvenanceSHA256, From: "the provenance's SHA-256 (EC2 without attest.s3_bucket)"},
	{Key: "distribution", From: "the foundation's distribution", Scope: ScopeFoundation},
	{Key: "release", Flag: "foundation --release", Scope: ScopeFoundation},
	{Key: "layout", Flag: "foundation --layout", Scope: ScopeFoundation},
	{Key: "profile", Flag: "foundation --profile", Scope: ScopeFoundation},
	{Key: "filesystem", Flag: "foundation --fs", Scope: ScopeFoundation},
	{Key: "kernel", Flag: "foundation --no-kernel", From: "the kernel the foundation installed", Scope: ScopeFoundation},
	{Key: "packages", From: "the number of packages the foundation installed", Scope: ScopeFoundation},
	{Key: "source_date_epoch", Flag: "foundation --source-date-epoch", Scope: ScopeFoundation},
}

// Reserved finds the tool tag a user's tag key would set in scope
// (ScopeBake or ScopeFoundation; ScopeAll checks every tool tag).
func Reserved(key, scope string) (ToolTag, bool) {
	for _, t := range ToolTags {
		if scope != ScopeAll && t.Scope != ScopeAll && t.Scope != scope {
			continue
		}
		if key == t.Key || (strings.HasSuffix(t.Key, ":") && strings.HasPrefix(key, t.Key)) {
			return t, true
		}
	}
	return ToolTag{}, false
}

// LaterTags are the keys of the tags added to an image after it is
// registered (a channel label, the boot test's outcome).
func LaterTags() []string {
	var out []string
	for _, t := range ToolTags {
		if t.Later {
			out = append(out, t.Key)
		}
	}
	return out
}

// Refusal says why a user may not set the tag and what to do instead.
func (t ToolTag) Refusal(key string) string {
	msg := fmt.Sprintf("tag %q is set by aminator", key)
	if t.From != "" {
		msg += " from " + t.From
	}
	if t.Flag != "" {
		msg += "; use " + t.Flag + " instead"
	}
	return msg
}

// CheckUserTags refuses a user's tags that aminator sets itself in scope,
// naming the first such key in sorted order.
func CheckUserTags(tags map[string]string, scope string) error {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if t, ok := Reserved(k, scope); ok {
			return errors.New(t.Refusal(k))
		}
	}
	return nil
}
