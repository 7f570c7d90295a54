package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil"
)

// The volume pool hands out a ready volume and is refilled in the
// background; gc frees what no image uses; fsck and reads catch a
// corrupted chunk and name the image it breaks. In a state directory of
// its own, since it damages its store on purpose, and on the plain store
// (store_fs: none), where volumes are rebuilt from verified chunks (on a
// reflink store they are clones, which a damaged chunk does not touch).
func TestPoolGCAndFsck(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	dir, run := ownState(t, "pool-state-", "AMINATOR_STORE_FS=none")
	volumes := func() []plugin.Volume {
		var vs []plugin.Volume
		if err := json.Unmarshal([]byte(mustOK(t, run("volumes", "list", "--output", "json"))), &vs); err != nil {
			t.Fatal(err)
		}
		return vs
	}
	b := mustOK(t, run("images", "import", "--role", "base", "pbase", testutil.DebianBase(t)))
	mustOK(t, run("pool", "fill", "pbase", "--size", "1"))
	vs := volumes()
	if len(vs) != 1 || vs[0].State != "pooled" {
		t.Fatalf("after fill: %+v", vs)
	}
	pooled := vs[0].ID
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-pooled", Version: "1.0", Files: map[string]string{"/opt/p": "p\n"}})
	r := run("-B", b, "-s", "pool", "--debug", deb)
	app := mustOK(t, r)
	if !strings.Contains(r.Stderr, "volume taken from the pool") || !strings.Contains(r.Stderr, pooled) {
		t.Errorf("the bake did not take the pooled volume %s:\n%s", pooled, r.Stderr)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		vs = volumes()
		if len(vs) == 1 && vs[0].State == "pooled" && vs[0].ID != pooled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool was not refilled: %+v", vs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := mustOK(t, run("pool", "status")); !strings.Contains(out, b) {
		t.Errorf("pool status:\n%s", out)
	}

	// gc: nothing to do while everything is in use; removing the app frees its chunks.
	var g struct {
		OrphanedVolumes []string `json:"orphaned_volumes"`
		Store           struct{ Chunks int }
	}
	json.Unmarshal([]byte(mustOK(t, run("gc", "--output", "json"))), &g)
	if g.Store.Chunks != 0 || len(g.OrphanedVolumes) != 0 {
		t.Errorf("gc removed something in use: %+v", g)
	}
	mustOK(t, run("images", "rm", app))
	json.Unmarshal([]byte(mustOK(t, run("gc", "--output", "json"))), &g)
	if g.Store.Chunks == 0 {
		t.Error("gc freed no chunk after the app image was removed")
	}
	if out := mustOK(t, run("fsck")); !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck of a healthy store:\n%s", out)
	}

	// Damage one chunk of the base.
	mustOK(t, run("pool", "drain"))
	chunks, _ := filepath.Glob(filepath.Join(dir, "data", "store", "chunks", "*", "*"))
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	bad := chunks[len(chunks)/2]
	data, _ := os.ReadFile(bad)
	data[len(data)/2] ^= 0x55
	os.WriteFile(bad, data, 0o600)
	r = run("fsck")
	if r.Code != 1 || !strings.Contains(r.Stdout, "bad chunk "+filepath.Base(bad)) || !strings.Contains(r.Stdout, "broken image "+b) {
		t.Errorf("fsck: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run("-B", b, "-s", "corrupt", deb)
	if r.Code != 1 || !strings.Contains(r.Stderr, "corrupt chunk") {
		t.Errorf("bake from a corrupt base: exit %d\n%s", r.Code, r.Stderr)
	}
	// fsck --repair: the bad chunk goes to quarantine; with no clone or
	// volume holding it, the base stays broken. Importing the same image
	// again stores the chunk again and heals it.
	r = run("fsck", "--repair")
	quarantined := filepath.Join(dir, "data", "store", "quarantine", filepath.Base(bad))
	if _, err := os.Stat(quarantined); r.Code != 1 || !strings.Contains(r.Stdout, "broken image "+b) || err != nil {
		t.Errorf("fsck --repair: exit %d, quarantined: %v\n%s\n%s", r.Code, err, r.Stdout, r.Stderr)
	}
	again := mustOK(t, run("images", "import", "--role", "base", "pbase2", testutil.DebianBase(t)))
	if out := mustOK(t, run("fsck")); !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck after storing the same data again:\n%s", out)
	}
	mustOK(t, run("images", "rm", b, again))
	mustOK(t, run("gc"))
}

// The recommended setup on an ext4 host: volumes and store on an xfs
// filesystem in a loop file (aminate init --store-fs xfs). Bakes, pools,
// gc and fsck work on it, and unmounting it leaves nothing.
func TestReflinkStore(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	dir, run := ownState(t, "xfs-state-")
	if out := mustOK(t, run("init", "--store-fs", "xfs", "--store-size", "8")); !strings.Contains(out, "reflink clones: true") {
		t.Fatalf("init: %s", out)
	}
	defer func() { mustOK(t, run("init", "--unmount")) }()
	b := mustOK(t, run("images", "import", "--role", "base", "xbase", testutil.DebianBase(t)))
	mustOK(t, run("pool", "fill", "xbase", "--size", "1"))
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-xfs", Version: "1.0", Files: map[string]string{"/opt/xfs": "x\n"}})
	r := run("-B", b, "-s", "x1", "--debug", deb)
	mustOK(t, r)
	if !strings.Contains(r.Stderr, "reused_shared") {
		t.Errorf("the snapshot did not use extent sharing:\n%s", r.Stderr)
	}
	mustOK(t, run("-B", b, "-s", "x2", deb)) // a second bake: a fresh clone, no pool needed
	if out := mustOK(t, run("fsck")); !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck:\n%s", out)
	}
	// Refill finished, then the pool drained so gc and unmount find it idle
	// (and new volumes are made from the store, not taken from the pool).
	time.Sleep(2 * time.Second)
	mustOK(t, run("pool", "drain"))
	damagedClone(t, dir, run, b)
	mustOK(t, run("gc"))
}

// damagedClone changes bytes in the clone of image b's root snapshot:
// fsck fails naming it (and drops it), a new volume of b has b's bytes
// (made from the chunks, and a clone made again). Then it damages a chunk
// of b, which fsck --repair rebuilds from that clone.
func damagedClone(t *testing.T, dir string, run func(...string) result, b string) {
	t.Helper()
	var im plugin.Image
	if err := json.Unmarshal([]byte(mustOK(t, run("images", "show", b, "--output", "json"))), &im); err != nil {
		t.Fatal(err)
	}
	snap := im.Root().SnapshotID
	f, err := os.OpenFile(filepath.Join(dir, "data", "store", "cache", snap+".img"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("damaged"), 3<<20+77)
	f.Close()
	r := run("fsck")
	if r.Code != 1 || !strings.Contains(r.Stdout, "bad clone of snapshot "+snap) {
		t.Errorf("fsck of a damaged clone: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	v := mustOK(t, run("volumes", "create", b))
	if out, err := exec.Command("cmp", filepath.Join(dir, "data", "volumes", v+".img"), testutil.DebianBase(t)).CombinedOutput(); err != nil {
		t.Errorf("a volume of the image differs from it: %v %s", err, out)
	}
	mustOK(t, run("volumes", "rm", v))

	// A damaged chunk of b: fsck --repair quarantines it and rebuilds it
	// from the (verified) clone.
	var m struct{ Chunks []string }
	store := filepath.Join(dir, "data", "store")
	mb, _ := os.ReadFile(filepath.Join(store, "snapshots", snap+".json"))
	json.Unmarshal(mb, &m)
	var h string
	for _, h = range m.Chunks[len(m.Chunks)/8:] {
		if h != "" {
			break
		}
	}
	chunk := filepath.Join(store, "chunks", h[:2], h)
	data, _ := os.ReadFile(chunk)
	data[len(data)-1] ^= 0x55
	os.WriteFile(chunk, data, 0o600)
	out := mustOK(t, run("fsck", "--repair")) // "ok": the new clone passes too
	if !strings.Contains(out, "repaired chunk "+h) || !strings.Contains(out, "3 clones checked") || !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck --repair of a chunk a clone holds:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(store, "quarantine", h)); err != nil {
		t.Errorf("the bad chunk is not in quarantine: %v", err)
	}
}
