package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

func open(t *testing.T) *Cloud {
	t.Helper()
	c, err := Open(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawFile(t *testing.T, size int64) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	f, _ := os.Create(p)
	f.Truncate(size)
	f.WriteAt([]byte("data"), 4096)
	f.Close()
	return p
}

func TestImportRegisterAndRemove(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	im, err := c.Import(ctx, rawFile(t, 8<<20), ImportOptions{Name: "base", Architecture: "x86_64", VirtualizationType: "hvm", Tags: plugin.Tags{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if !ids.Valid("ami", im.ID) || len(im.ID) != 21 || im.Tags["k"] != "v" || im.Root() == nil || im.Root().VolumeSizeGiB != 1 {
		t.Errorf("imported: %+v", im)
	}
	if _, err := c.Import(ctx, rawFile(t, 8<<20), ImportOptions{Name: "base"}); !errors.Is(err, plugin.ErrExists) {
		t.Errorf("duplicate import: %v", err)
	}
	snaps, _ := c.ListSnapshots(ctx)
	if len(snaps) != 1 {
		t.Fatalf("a failed import left a snapshot: %d", len(snaps))
	}
	_, err = c.RegisterImage(ctx, plugin.ImageRequest{Name: "base", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: im.Root().SnapshotID}}})
	if !errors.Is(err, plugin.ErrExists) || !strings.Contains(err.Error(), im.ID) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := c.DeleteSnapshot(ctx, im.Root().SnapshotID); err == nil || !strings.Contains(err.Error(), im.ID) {
		t.Errorf("deleting a snapshot in use: %v", err)
	}
	if err := c.DeregisterImage(ctx, im.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSnapshot(ctx, im.Root().SnapshotID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := c.Store().Snapshots(); len(ids) != 0 {
		t.Errorf("snapshot data left: %v", ids)
	}
	if _, err := c.Import(ctx, rawFile(t, 1000), ImportOptions{Name: "odd"}); err == nil {
		t.Error("imported a file that is not whole sectors")
	}
}

// A volume whose owning process is gone shows as orphaned and can be
// removed; one a live bake owns cannot.
func TestVolumeOwnership(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	im, err := c.Import(ctx, rawFile(t, 8<<20), ImportOptions{Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: im.Root().SnapshotID, SizeBytes: 16 << 20, Tags: plugin.Tags{owner.Purpose: owner.PurposeWork}})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(c.VolumePath(v.ID)); st.Size() != 16<<20 {
		t.Errorf("volume size %d", st.Size())
	}
	// Another process (another Cloud here) sees it owned, not orphaned.
	other, _ := Open(Options{StateDir: c.Dir()})
	defer other.Close()
	ov, _ := other.Volume(ctx, v.ID)
	if ov.Orphaned {
		t.Error("a live bake's volume shows as orphaned")
	}
	if err := other.DeleteVolume(ctx, v.ID); err == nil || !errors.Is(err, flock.ErrLocked) {
		t.Errorf("deleted a volume a live bake owns: %v", err)
	}
	c.releaseOwner(v.ID) // the bake dies
	ov, _ = other.Volume(ctx, v.ID)
	if !ov.Orphaned {
		t.Error("a dead bake's volume is not orphaned")
	}
	if err := other.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.VolumePath(v.ID)); !os.IsNotExist(err) {
		t.Error("volume file left")
	}
}

// gc removes the scratch files of dead processes (a bake's parent killed
// with SIGKILL leaves its refill list) and keeps those a live one holds.
func TestGCScratchOfDeadProcesses(t *testing.T) {
	c := open(t)
	live, dead := filepath.Join(c.dir, "tmp", "refill-live"), filepath.Join(c.dir, "tmp", "refill-dead")
	os.MkdirAll(filepath.Dir(live), 0o700)
	os.WriteFile(dead, []byte("snap-1\n"), 0o600)
	lock, err := flock.TryExclusive(live)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gc(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if fileExists(dead) || !strings.Contains(strings.Join(r.IDs(gcreport.Scratch), " "), dead) || strings.Contains(strings.Join(r.IDs(gcreport.Scratch), " "), live) {
		t.Errorf("a dead process's scratch file is left, or a live one's listed: %v", r.IDs(gcreport.Scratch))
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's file was removed: %v", err)
	}
	lock.Unlock()
	if gc(t, c); fileExists(live) {
		t.Error("the file stays once its process is gone")
	}
}

// A bundle of a local image in progress (its flock, lock/bundle-*.lock)
// keeps gc out of tmp/, where its disk and parts are.
func TestGCLeavesARunningBundle(t *testing.T) {
	c := open(t)
	parts := filepath.Join(c.dir, "tmp", "bundle-123")
	os.MkdirAll(parts, 0o700)
	lock, err := flock.TryExclusive(filepath.Join(c.lockDir, "bundle-job-1.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if gc(t, c); !fileExists(parts) {
		t.Fatal("gc removed a running bundle's scratch")
	}
	lock.Unlock()
	if gc(t, c); fileExists(parts) {
		t.Error("gc left a dead bundle's scratch")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// gc removes the job lock and the empty mount point a SIGKILLed bake
// leaves, and keeps a live job's lock, a lock just made and a mount point
// with something in it.
func TestGCStaleJobFiles(t *testing.T) {
	c := open(t)
	old := time.Now().Add(-time.Minute)
	dead, live, fresh := filepath.Join(c.lockDir, "bake-dead.lock"), filepath.Join(c.lockDir, "bake-live.lock"), filepath.Join(c.lockDir, "bake-fresh.lock")
	for _, p := range []string{dead, live, fresh} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	os.Chtimes(dead, old, old)
	os.Chtimes(live, old, old)
	held, err := flock.TryExclusive(live)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	empty, full := filepath.Join(c.dir, "mnt", "vol-0123456789abcdef0"), filepath.Join(c.dir, "mnt", "vol-0123456789abcdef1")
	os.MkdirAll(empty, 0o755)
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "f"), nil, 0o644)
	r, err := gc(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if fileExists(dead) || fileExists(empty) || len(r.IDs(gcreport.Stale)) != 2 {
		t.Errorf("stale files left: %v", r.IDs(gcreport.Stale))
	}
	if !fileExists(live) || !fileExists(fresh) || !fileExists(full) {
		t.Errorf("removed a live lock, a fresh one or a mount point in use: %v", r.IDs(gcreport.Stale))
	}
}

// gc reports a pending snapshot it could not delete (it dereferenced the
// nil result of the failed statement before).
func TestGCReportsAFailedDelete(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	id := ids.New("snap")
	for _, q := range []string{
		`INSERT INTO snapshots(id,state,created_at) VALUES('` + id + `','pending','` + now() + `')`,
		`CREATE TRIGGER refuse BEFORE DELETE ON snapshots BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`,
	} {
		if _, err := c.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := gc(t, c)
	if err == nil || !strings.Contains(err.Error(), "refused by the test") || len(r.IDs(gcreport.PendingSnapshot)) != 0 {
		t.Errorf("gc: %+v %v, want the refusal reported and nothing listed as removed", r, err)
	}
	if s, err := c.Snapshot(ctx, id); err != nil || s.State != "pending" {
		t.Errorf("the snapshot: %+v %v", s, err)
	}
}
