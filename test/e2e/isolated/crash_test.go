package isolated

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil"
)

// registry is what the local cloud shows of a state: its images and
// snapshots (with their states), volumes, stored manifests, and the files
// in its lock, mnt and tmp directories and its store's tmp (but the locks
// every command shares).
type registry struct {
	Images, Snapshots, Volumes, Manifests, Files []string
}

func registryOf(t *testing.T, c *cloud) registry {
	t.Helper()
	var r registry
	var ims []plugin.Image
	var snaps []plugin.Snapshot
	var vols []plugin.Volume
	for what, v := range map[string]any{"images": &ims, "snapshots": &snaps, "volumes": &vols} {
		if err := json.Unmarshal([]byte(mustOK(t, c.Aminate(t, what, "list", "--output", "json"))), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, im := range ims {
		r.Images = append(r.Images, im.ID)
	}
	for _, s := range snaps {
		r.Snapshots = append(r.Snapshots, s.ID+" "+s.State)
	}
	for _, v := range vols {
		r.Volumes = append(r.Volumes, v.ID+" "+v.State)
	}
	ms, _ := filepath.Glob(filepath.Join(c.State, "data", "store", "snapshots", "*.json"))
	for _, m := range ms {
		r.Manifests = append(r.Manifests, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	shared := []string{"loop.lock", "datafs.lock", "pool-take.lock", "blockdevice.lock"}
	for _, d := range []string{"lock", "mnt", "tmp", "data/store/tmp"} {
		ents, _ := os.ReadDir(filepath.Join(c.State, d))
		for _, e := range ents {
			if d == "lock" && (slices.Contains(shared, e.Name()) || strings.HasPrefix(e.Name(), "pool-snap-")) {
				continue
			}
			r.Files = append(r.Files, filepath.Join(d, e.Name()))
		}
	}
	for _, l := range [][]string{r.Images, r.Snapshots, r.Volumes, r.Manifests, r.Files} {
		sort.Strings(l)
	}
	return r
}

// recovered restarts after a crash: gc (again, until the killed job's lock
// is old enough to be stale) until the state is want, then fsck, which
// must find the store whole. Every stored manifest has its snapshot.
func recovered(t *testing.T, c *cloud, point string, want registry) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got registry
	for {
		mustOK(t, c.Aminate(t, "gc"))
		got = registryOf(t, c)
		if equalRegistry(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a crash at %s and gc, the state is\n%+v\nnot the old one\n%+v", point, got, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
	mustOK(t, c.Aminate(t, "fsck"))
}

func equalRegistry(a, b registry) bool {
	return slices.Equal(a.Images, b.Images) && slices.Equal(a.Snapshots, b.Snapshots) && slices.Equal(a.Volumes, b.Volumes) &&
		slices.Equal(a.Manifests, b.Manifests) && slices.Equal(a.Files, b.Files)
}

// A bake killed at each durability point of its snapshot (chunks synced,
// manifest written, row completed), a pool refill killed before its volume
// is ready, and gc killed after planning and part-way through removing:
// after a restart, gc and fsck, the state is the old one, exactly — no
// image, snapshot, manifest, volume, lock, mount point or scratch of the
// killed job is left, and fsck finds the store whole. The bake run without
// a crash then makes the new state: its image registered and fsck-clean.
func TestCrashRecovery(t *testing.T) {
	c := isolated(t)
	b := mustOK(t, c.Aminate(t, "images", "import", baseName, testutil.DebianBase(t), "--role", "base", "--tag", "base_ami_version=bookworm-1"))
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-crash", Version: "1.0", Files: map[string]string{"/opt/crash/file": "crash\n"}})
	mustOK(t, c.Aminate(t, "gc"))
	old := registryOf(t, c)
	if len(old.Images) != 1 || len(old.Manifests) != 1 || len(old.Files) != 0 {
		t.Fatalf("the state before: %+v", old)
	}
	for _, point := range []string{"after-chunks", "after-manifest", "after-row"} {
		c.Crash(t, point, nil, "-B", b, "-s", "crash", deb)
		recovered(t, c, point, old)
	}

	c.Crash(t, "pool-refill", nil, "pool", "fill", b, "--size", "1")
	mustOK(t, c.Aminate(t, "pool", "drain"))
	recovered(t, c, "pool-refill", old)

	app := mustOK(t, c.Aminate(t, "-B", b, "-s", "crash", deb))
	mustOK(t, c.Aminate(t, "fsck"))
	baked := registryOf(t, c)
	if len(baked.Images) != 2 || !slices.Contains(baked.Images, app) || len(baked.Manifests) != 2 {
		t.Fatalf("the bake without a crash: %+v", baked)
	}
	// Unused chunks for gc to remove, and gc killed at work.
	mustOK(t, c.Aminate(t, "images", "rm", app))
	for _, point := range []string{"gc-plan", "gc-remove"} {
		c.Crash(t, point, nil, "gc")
		if r := c.Aminate(t, "fsck"); r.Code != 0 {
			t.Fatalf("fsck after gc was killed at %s: %s%s", point, r.Stdout, r.Stderr)
		}
	}
	recovered(t, c, "gc-remove", old)
}
