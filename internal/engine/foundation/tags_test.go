package foundation

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

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
