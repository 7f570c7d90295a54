package foundation

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// Every tag a foundation sets is in the one list of tool tags, and a
// user's tag that would set one, or that the cloud would refuse, is
// refused before any work.
func TestTags(t *testing.T) {
	o := Options{Name: "debian-bookworm", Suffix: "s", Release: "bookworm", Layout: "uefi", FS: "ext4", Creator: "me"}
	keys := slices.Sorted(maps.Keys(ownTags(o, "6.1", 100, 2)))
	for _, k := range append(keys, "creation_time") {
		if _, ok := naming.Reserved(k, naming.ScopeFoundation); !ok {
			t.Errorf("a foundation sets tag %q, which naming.ToolTags does not list", k)
		}
	}
	c, err := local.Open(local.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := &bake.Environment{Cloud: c}
	for tags, want := range map[string]string{
		"release=x":                     `tag "release" is set by aminator; use foundation --release instead`,
		"creator=x":                     "use -c/--creator instead",
		"k=" + strings.Repeat("v", 257): "the cloud takes at most 256",
	} {
		k, v, _ := strings.Cut(tags, "=")
		o.Tags = map[string]string{k: v}
		err := checkInputs(context.Background(), env, o, "n")
		var ue *bake.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("--tag %.20s: %v, want a usage error saying %q", tags, err, want)
		}
	}
	o.Tags = map[string]string{owner.Host: "a bake's snapshot tag, free on a foundation"}
	if err := checkInputs(context.Background(), env, o, "n"); err != nil {
		t.Errorf("host on a foundation: %v", err)
	}
}

// A reproducible foundation says so, with its epoch, on the image and
// its snapshot; an ordinary one has no such tag. Its own tags, the most
// a foundation sets (hybrid: root_partition and boot too), are the count
// docs/tags.md gives.
func TestSourceDateEpochTag(t *testing.T) {
	o := Options{Name: "debian-bookworm", Suffix: "s", Release: "bookworm", Layout: "hybrid", FS: "ext4", Profile: ProfileCloud}
	if image, _ := tags(o, "6.1", 100, time.Now()); image[TagSourceDateEpoch] != "" || len(image) != 14 {
		t.Errorf("an ordinary foundation's tags: %v", image)
	}
	e := int64(1700000000)
	o.SourceDateEpoch = &e
	image, snapshot := tags(o, "6.1", 100, time.Now())
	if image[TagSourceDateEpoch] != "1700000000" || snapshot[TagSourceDateEpoch] != "1700000000" {
		t.Errorf("a reproducible foundation's tags: %v %v", image, snapshot)
	}
	if len(image) != 15 {
		t.Errorf("a reproducible hybrid foundation sets %d tags on its image; docs/tags.md says 15", len(image))
	}
	// The room left for --tag, as docs/tags.md gives it: 50, less the
	// foundation's own and the three test and promote add later.
	c, err := local.Open(local.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := &bake.Environment{Cloud: c}
	for epoch, want := range map[*int64]string{nil: "give at most 33", &e: "give at most 32"} {
		o.SourceDateEpoch, o.Tags = epoch, map[string]string{}
		for i := range 40 {
			o.Tags[fmt.Sprintf("k%d", i)] = "v"
		}
		if err := checkInputs(context.Background(), env, o, "n"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("40 tags on a foundation (epoch %v): %v, want %q", epoch != nil, err, want)
		}
	}
}
