package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/aminator-go/aminator/internal/image/treediff"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

// DiffFiles compares the root filesystems of the images refA and refB
// name as normalised file trees (package treediff): each image's disk is
// restored into the cloud's scratch directory (a reflink clone where the
// store has reflinks), attached read-only and its root filesystem (the
// root_partition tag's partition) mounted read-only without replaying
// its journal, for as long as the comparison takes. Every return, a
// cancelled ctx (SIGINT) included, unmounts and detaches what it set up.
func DiffFiles(ctx context.Context, c RawDiskSource, refA, refB string, o treediff.Options) ([]treediff.Diff, error) {
	var ims [2]*plugin.Image
	for i, ref := range []string{refA, refB} {
		im, err := Find(ctx, c, ref)
		if err != nil {
			return nil, err
		}
		ims[i] = im
	}
	tmp, release, err := c.Scratch(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	work, err := os.MkdirTemp(tmp, "diff-")
	if err != nil {
		return nil, err
	}
	// Not RemoveAll: were an unmount to fail, it would reach into the image.
	defer os.Remove(work)
	var diffs []treediff.Diff
	err = withImageRoot(ctx, c, ims[0], filepath.Join(work, "a"), func(a string) error {
		return withImageRoot(ctx, c, ims[1], filepath.Join(work, "b"), func(b string) error {
			var err error
			diffs, err = treediff.Compare(ctx, a, b, o)
			return err
		})
	})
	return diffs, err
}

// withImageRoot restores im's root disk to dir/disk.img, mounts its root
// filesystem read-only on dir/root, calls fn with it, and unmounts,
// detaches and removes the disk and dir again (an unmount that fails is
// an error, and leaves dir).
func withImageRoot(ctx context.Context, c plugin.DiskFiles, im *plugin.Image, dir string, fn func(root string) error) (err error) {
	snap, err := RootSnapshot(im)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	defer os.Remove(dir)
	disk := filepath.Join(dir, "disk.img")
	if err := c.RestoreSnapshot(ctx, snap, disk); err != nil {
		return fmt.Errorf("image %s: %w", im.ID, err)
	}
	defer os.Remove(disk)
	o := loop.Options{ReadOnly: true}
	if part, _ := strconv.Atoi(im.Tags["root_partition"]); part > 0 {
		p, err := partition.Find(disk, part)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.ID, err)
		}
		o.Offset, o.SizeLimit = uint64(p.Start), uint64(p.Size)
	}
	d, err := loop.Attach(ctx, disk, o)
	if err != nil {
		return fmt.Errorf("image %s: %w", im.ID, err)
	}
	defer d.Detach()
	fstype, err := mount.DetectFS(d.Path)
	if err != nil {
		return fmt.Errorf("image %s: %w", im.ID, err)
	}
	mnt := filepath.Join(dir, "root")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		return err
	}
	defer os.Remove(mnt)
	flags := uintptr(syscall.MS_RDONLY | syscall.MS_NODEV | syscall.MS_NOSUID | syscall.MS_NOEXEC)
	if err := mount.Mount(d.Path, mnt, fstype, flags, readOnlyData(fstype)); err != nil {
		return fmt.Errorf("image %s: %w", im.ID, err)
	}
	defer func() {
		if uerr := mount.Unmount(context.WithoutCancel(ctx), mnt, nil); uerr != nil {
			err = errors.Join(err, fmt.Errorf("image %s: %w", im.ID, uerr))
		}
	}()
	return fn(mnt)
}

// readOnlyData are the mount options that keep a read-only mount from
// writing to its device: no journal replay, and for XFS no UUID check
// (two images of one base share their filesystem's UUID).
func readOnlyData(fstype string) string {
	switch fstype {
	case "ext4":
		return "noload"
	case "xfs":
		return "norecovery,nouuid"
	}
	return ""
}
