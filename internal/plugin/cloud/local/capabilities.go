package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/snapstore"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// The local cloud has every optional capability (see plugin.Pool and the
// interfaces beside it).
var (
	_ plugin.Pool        = (*Cloud)(nil)
	_ plugin.Lister      = (*Cloud)(nil)
	_ plugin.Manifests   = (*Cloud)(nil)
	_ plugin.GCPlanner   = (*Cloud)(nil)
	_ plugin.Importer    = (*Cloud)(nil)
	_ plugin.DiskFiles   = (*Cloud)(nil)
	_ plugin.Checker     = (*Cloud)(nil)
	_ plugin.DiskDigests = (*Cloud)(nil)
)

// OnPoolTake makes fn be called after a bake takes a pooled volume.
func (c *Cloud) OnPoolTake(fn func(snapshotID string)) { c.poolTaken = fn }

// PlanGarbage is PlanGC as a gcreport.Plan.
func (c *Cloud) PlanGarbage(ctx context.Context) (gcreport.Plan, error) {
	p, err := c.PlanGC(ctx)
	if p == nil {
		return nil, err
	}
	return p, err
}

// RestoreSnapshot writes a snapshot's data into the new file dst.
func (c *Cloud) RestoreSnapshot(ctx context.Context, snapshotID, dst string) error {
	if _, err := c.Snapshot(ctx, snapshotID); err != nil {
		return err
	}
	if err := c.store.Restore(ctx, snapshotID, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("restore snapshot %s: %w", snapshotID, err)
	}
	return nil
}

// Scratch returns the state directory's tmp/, on the store's filesystem,
// with a bundle job lock held until release: gc counts it as a running
// job's and leaves tmp/ alone.
func (c *Cloud) Scratch(ctx context.Context) (string, func(), error) {
	tmp := filepath.Join(c.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, fmt.Errorf("scratch: %w", err)
	}
	lockPath := filepath.Join(c.lockDir, fmt.Sprintf("bundle-job-%d.lock", os.Getpid()))
	lock, err := flock.Exclusive(ctx, lockPath)
	if err != nil {
		return "", nil, fmt.Errorf("scratch: %w", err)
	}
	return tmp, func() { os.Remove(lockPath); lock.Unlock() }, nil
}

// DiskDigest is a snapshot's disk digest from its manifest's chunk hashes
// (no chunk is read); a store of another chunk size than the digest's
// reads the chunks instead.
func (c *Cloud) DiskDigest(ctx context.Context, snapshotID string) (string, error) {
	if _, err := c.Snapshot(ctx, snapshotID); err != nil {
		return "", err
	}
	d, err := c.store.DiskDigest(snapshotID)
	if errors.Is(err, snapstore.ErrDigestNeedsRead) {
		c.log.Debug("the store's chunks are not the digest's; reading the snapshot", "snapshot", snapshotID)
		return c.ReadDiskDigest(ctx, snapshotID)
	}
	if err != nil {
		return "", fmt.Errorf("disk digest: %w", err)
	}
	return d, nil
}

// ReadDiskDigest recomputes a snapshot's disk digest from its chunks,
// each verified against its hash: a changed chunk fails with
// snapstore.ErrCorrupt.
func (c *Cloud) ReadDiskDigest(ctx context.Context, snapshotID string) (string, error) {
	if _, err := c.Snapshot(ctx, snapshotID); err != nil {
		return "", err
	}
	d, err := c.store.ReadDiskDigest(ctx, snapshotID)
	if err != nil {
		return "", fmt.Errorf("read disk digest: %w", err)
	}
	return d, nil
}

// Reflink reports whether the store makes reflink clones.
func (c *Cloud) Reflink() bool { return c.store.Reflink() }

// storeSetup is the local cloud's store filesystem (datafs.go), readied
// before the cloud opens.
type storeSetup struct{}

func (storeSetup) PrepareStore(ctx context.Context, stateDir, mode string, log *slog.Logger) error {
	return PrepareDataFS(ctx, stateDir, mode, log)
}

func (storeSetup) InitStore(ctx context.Context, stateDir, fstype string, size int64, log *slog.Logger) error {
	return InitDataFS(ctx, stateDir, fstype, size, log)
}

func (storeSetup) UnmountStore(ctx context.Context, stateDir string) error {
	return UnmountDataFS(ctx, stateDir)
}
