package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/plugin"
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
	snaps, _ := c.Snapshots(ctx)
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
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: im.Root().SnapshotID, SizeBytes: 16 << 20, Tags: plugin.Tags{"purpose": "amination"}})
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
