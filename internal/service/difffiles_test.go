package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/image/treediff"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
)

// fileDisks keeps each snapshot as a raw disk file named after it.
type fileDisks struct{ dir string }

func (f fileDisks) RestoreSnapshot(ctx context.Context, id, dst string) error {
	src := filepath.Join(f.dir, id)
	if _, err := os.Stat(src); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	return nil
}
func (f fileDisks) Scratch(context.Context) (string, func(), error) { return f.dir, func() {}, nil }
func (f fileDisks) Reflink() bool                                   { return false }

// ext4Disk makes an ext4 filesystem file from a directory's files.
func ext4Disk(t *testing.T, file string, files map[string]string) {
	t.Helper()
	src := t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, file, "8M").CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v\n%s", err, out)
	}
}

func image(id, snap string) *plugin.Image {
	return &plugin.Image{ID: id, RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: snap}}}
}

// Two images' root trees mount read-only and compare; whatever fn does
// (fail, or be cancelled as SIGINT cancels a command), nothing stays
// mounted or attached, and the scratch files go.
func TestWithImageRootLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	ext4Disk(t, filepath.Join(dir, "snap-a"), map[string]string{"etc/hosts": "a\n", "opt/x": "x"})
	ext4Disk(t, filepath.Join(dir, "snap-b"), map[string]string{"etc/hosts": "b\n"})
	disks := fileDisks{dir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var diffs []treediff.Diff
	err := withImageRoot(ctx, disks, image("ami-a", "snap-a"), filepath.Join(dir, "a"), func(a string) error {
		return withImageRoot(ctx, disks, image("ami-b", "snap-b"), filepath.Join(dir, "b"), func(b string) error {
			if err := os.WriteFile(filepath.Join(b, "w"), nil, 0o600); err == nil {
				t.Error("the image's root is writable")
			}
			var err error
			diffs, err = treediff.Compare(ctx, a, b, treediff.Options{Ignore: []string{"/lost+found"}})
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 3 || diffs[0].String() != "M /etc/hosts (content)" || diffs[1].String() != "- /opt" {
		t.Errorf("diffs: %v", diffs)
	}
	leftNothing(t, dir)

	boom := errors.New("boom")
	err = withImageRoot(ctx, disks, image("ami-a", "snap-a"), filepath.Join(dir, "a"), func(string) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("err %v", err)
	}
	leftNothing(t, dir)

	err = withImageRoot(ctx, disks, image("ami-a", "snap-a"), filepath.Join(dir, "a"), func(a string) error {
		cancel()
		_, err := treediff.Compare(ctx, a, a, treediff.Options{})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
	leftNothing(t, dir)
	if err := withImageRoot(context.Background(), disks, image("ami-c", "snap-missing"), filepath.Join(dir, "c"), func(string) error { return nil }); err == nil {
		t.Error("a missing snapshot mounted")
	}
	leftNothing(t, dir)
}

// A partitioned image's root is its root_partition tag's partition.
func TestWithImageRootPartition(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "snap-p")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 12<<20); err != nil {
		t.Fatal(err)
	}
	sf := exec.Command("sfdisk", "-q", disk)
	sf.Stdin = strings.NewReader("label: gpt\nstart=2048, size=16384\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Skipf("sfdisk: %v\n%s", err, out)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "in-partition"), []byte("p"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "offset=1048576", "-d", src, disk, "8M").CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v\n%s", err, out)
	}
	im := image("ami-p", "snap-p")
	im.Tags = map[string]string{"root_partition": "1"}
	err := withImageRoot(context.Background(), fileDisks{dir}, im, filepath.Join(dir, "a"), func(root string) error {
		_, err := os.Stat(filepath.Join(root, "in-partition"))
		return err
	})
	if err != nil {
		t.Error(err)
	}
	leftNothing(t, dir)
}

// Two XFS images of one base share their filesystem's UUID: they mount
// side by side all the same.
func TestWithImageRootXFSTwins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	a := filepath.Join(dir, "snap-x1")
	if err := os.WriteFile(a, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(a, 320<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", a).CombinedOutput(); err != nil {
		t.Skipf("mkfs.xfs: %v\n%s", err, out)
	}
	if out, err := exec.Command("cp", "--sparse=always", a, filepath.Join(dir, "snap-x2")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	disks := fileDisks{dir}
	ctx := context.Background()
	err := withImageRoot(ctx, disks, image("ami-x1", "snap-x1"), filepath.Join(dir, "a"), func(ra string) error {
		return withImageRoot(ctx, disks, image("ami-x2", "snap-x2"), filepath.Join(dir, "b"), func(rb string) error {
			ds, err := treediff.Compare(ctx, ra, rb, treediff.Options{})
			if err == nil && len(ds) > 0 {
				t.Errorf("twins differ: %v", ds)
			}
			return err
		})
	})
	if err != nil {
		t.Error(err)
	}
	leftNothing(t, dir)
}

func leftNothing(t *testing.T, dir string) {
	t.Helper()
	if m, _ := mount.Under(dir); len(m) > 0 {
		t.Errorf("left mounted: %v", m)
	}
	if l := loop.WaitDetached(dir, 10*time.Second); len(l) > 0 {
		t.Errorf("left attached: %v", l)
	}
	for _, sub := range []string{"a", "b", "c"} {
		if _, err := os.Stat(filepath.Join(dir, sub, "disk.img")); err == nil {
			t.Errorf("%s/disk.img left", sub)
		}
	}
}
