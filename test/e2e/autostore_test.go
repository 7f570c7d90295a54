package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/store/snapstore"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/testutil"
)

const autoStoreLine = "reflink store set up"

// storeMounted reports the filesystem type mounted on dir/data ("" if none).
func storeMounted(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == filepath.Join(dir, "data") {
			return f[2]
		}
	}
	return ""
}

// A fresh state directory on ext4 gets the reflink store from its first
// command, which says so in one line; the bake after it runs on the store
// (its snapshot reuses the base's shared extents) and says nothing more
// about it; unmounted, the store comes back with the next command.
func TestAutoReflinkStore(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	dir, run := ownState(t, "auto-state-")
	if snapstore.CanReflink(dir) {
		t.Skip("the test directory has reflinks already")
	}
	r := run("images", "import", "--role", "base", "abase", testutil.DebianBase(t))
	b := mustOK(t, r)
	if n := strings.Count(r.Stderr, autoStoreLine); n != 1 {
		t.Fatalf("the first command said %q %d times, want once:\n%s", autoStoreLine, n, r.Stderr)
	}
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.Contains(l, autoStoreLine) && (!strings.Contains(l, filepath.Join(dir, "data.xfs")) || !strings.Contains(l, "store_fs: none")) {
			t.Errorf("the line does not say where, or how to turn it off: %s", l)
		}
	}
	if fs := storeMounted(t, dir); fs != "xfs" {
		t.Fatalf("data/ has %q mounted, want xfs", fs)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-auto", Version: "1.0", Files: map[string]string{"/opt/auto": "a\n"}})
	r = run("-B", b, "-s", "a1", "--debug", deb)
	mustOK(t, r)
	if strings.Contains(r.Stderr, autoStoreLine) {
		t.Errorf("the bake set up the store again:\n%s", r.Stderr)
	}
	r = run("-B", b, "-s", "a2", "--debug", deb) // a clone of the base: extents shared with it
	mustOK(t, r)
	if !strings.Contains(r.Stderr, "reused_shared") {
		t.Errorf("the snapshot did not use extent sharing:\n%s", r.Stderr)
	}
	// A process in a mount namespace made meanwhile keeps the filesystem
	// alive after the unmount; the remount must use it, not a second one.
	holder := exec.Command("unshare", "-m", "--propagation", "private", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	time.Sleep(200 * time.Millisecond)
	mustOK(t, run("init", "--unmount"))
	if fs := storeMounted(t, dir); fs != "" {
		t.Fatalf("still mounted after init --unmount: %s", fs)
	}
	if out := mustOK(t, run("images", "list")); !strings.Contains(out, b) {
		t.Errorf("after a remount the image list lacks %s:\n%s", b, out)
	}
	holder.Process.Kill()
	holder.Wait()
	mustOK(t, run("init", "--unmount"))
	if out := mustOK(t, run("init")); !strings.Contains(out, "reflink clones: true") {
		t.Errorf("init: %s", out)
	}
	mustOK(t, run("gc"))
}

// store_fs: none, from a config file, AMINATOR_STORE_FS or --store-fs,
// keeps the plain store; a state directory that holds a store already is
// never converted by the default (auto), and init refuses to.
func TestAutoStoreOffAndExistingStore(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	conf := filepath.Join(t.TempDir(), "aminator.yml")
	os.WriteFile(conf, []byte("store_fs: none\n"), 0o644)
	for _, way := range [][]string{{"--config", conf}, {"--store-fs", "none"}} {
		dir, run := ownState(t, "off-state-")
		r := run(append([]string{"images", "list"}, way...)...)
		mustOK(t, r)
		if strings.Contains(r.Stderr, autoStoreLine) || storeMounted(t, dir) != "" {
			t.Errorf("%v: the store was set up:\n%s", way, r.Stderr)
		}
	}
	dir, off := ownState(t, "off-state-", "AMINATOR_STORE_FS=none")
	b := mustOK(t, off("images", "import", "--role", "base", "obase", testutil.DebianBase(t)))
	if storeMounted(t, dir) != "" {
		t.Fatal("AMINATOR_STORE_FS=none: the store was set up")
	}
	// Now with the default: the store holds a snapshot, so it stays.
	r := aminateEnv(t, []string{"AMINATOR_STATE_DIR=" + dir}, "-B", b, "-s", "o1", deb(t, "aminator-off"))
	mustOK(t, r)
	if strings.Contains(r.Stderr, autoStoreLine) || storeMounted(t, dir) != "" {
		t.Errorf("an existing store was converted:\n%s", r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data.yml")); err == nil {
		t.Error("data.yml written for an existing store")
	}
	r = aminateEnv(t, []string{"AMINATOR_STATE_DIR=" + dir}, "init", "--store-fs", "xfs", "--store-size", "8")
	if r.Code == 0 || !strings.Contains(r.Stderr, "already holds") {
		t.Errorf("init --store-fs xfs on a used store: exit %d\n%s", r.Code, r.Stderr)
	}
	if out := mustOK(t, aminateEnv(t, []string{"AMINATOR_STATE_DIR=" + dir}, "images", "list")); !strings.Contains(out, b) {
		t.Errorf("the image is gone:\n%s", out)
	}
}

func deb(t *testing.T, name string) string {
	return testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: name, Version: "1.0", Files: map[string]string{"/opt/" + name: "x\n"}})
}

// Two first commands at once on a fresh state directory: one sets up the
// store, the other waits for it and uses it; both succeed.
func TestAutoStoreConcurrentFirstCommands(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	dir, run := ownState(t, "race-state-")
	img := testutil.DebianBase(t)
	var wg sync.WaitGroup
	rs := make([]result, 2)
	for i := range rs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rs[i] = run("images", "import", "--role", "base", "race"+string(rune('a'+i)), img)
		}(i)
	}
	wg.Wait()
	said := 0
	for _, r := range rs {
		mustOK(t, r)
		said += strings.Count(r.Stderr, autoStoreLine)
	}
	if said != 1 {
		t.Errorf("the set-up line came %d times, want once:\n%s\n%s", said, rs[0].Stderr, rs[1].Stderr)
	}
	if fs := storeMounted(t, dir); fs != "xfs" {
		t.Fatalf("data/ has %q mounted, want xfs", fs)
	}
	if ms, _ := mount.Under(dir); len(ms) != 1 {
		t.Errorf("mounts under the state directory: %v", ms)
	}
	if out := mustOK(t, run("images", "list")); !strings.Contains(out, "racea") || !strings.Contains(out, "raceb") {
		t.Errorf("images list:\n%s", out)
	}
	if out := mustOK(t, run("fsck")); !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck:\n%s", out)
	}
}

// A state directory on a filesystem with reflinks already (here xfs in a
// loop file the test mounts) needs no store filesystem: none is made.
func TestAutoStoreOnReflinkHost(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	img := filepath.Join(t.TempDir(), "host.xfs")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 2<<30)
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v %s", err, out)
	}
	ctx := context.Background()
	d, err := loop.Attach(ctx, img, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(workDir(), "reflink-host")
	os.MkdirAll(host, 0o755)
	defer os.Remove(host)
	if err := mount.Mount(d.Path, host, "xfs", 0, ""); err != nil {
		d.Detach()
		t.Fatal(err)
	}
	d.Release()
	defer mount.Unmount(ctx, host, nil)
	state := filepath.Join(host, "state")
	r := aminateEnv(t, []string{"AMINATOR_STATE_DIR=" + state}, "init")
	if out := mustOK(t, r); !strings.Contains(out, "reflink clones: true") {
		t.Errorf("init: %s", out)
	}
	if strings.Contains(r.Stderr, autoStoreLine) {
		t.Errorf("a store filesystem was made on a reflink host:\n%s", r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "data.yml")); err == nil {
		t.Error("data.yml written on a reflink host")
	}
}
