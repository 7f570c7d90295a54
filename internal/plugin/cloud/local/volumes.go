package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/sys/loop"
)

const volCols = `id,snapshot_id,size_bytes,state,device,created_at`

func scanVolume(s scanner) (*plugin.Volume, error) {
	var v plugin.Volume
	var created string
	if err := s.Scan(&v.ID, &v.SnapshotID, &v.SizeBytes, &v.State, &v.Device, &created); err != nil {
		return nil, err
	}
	v.CreatedAt = parseTime(created)
	return &v, nil
}

// Volume finds a volume by id.
func (c *Cloud) Volume(ctx context.Context, id string) (*plugin.Volume, error) {
	v, err := scanVolume(c.db.QueryRowContext(ctx, `SELECT `+volCols+` FROM volumes WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no volume %s: %w", id, plugin.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", id, err)
	}
	if v.Tags, err = c.tags(ctx, id); err != nil {
		return nil, err
	}
	v.Orphaned = c.orphaned(v)
	return v, nil
}

// ListVolumes lists volumes, newest first.
func (c *Cloud) ListVolumes(ctx context.Context) ([]*plugin.Volume, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+volCols+` FROM volumes ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*plugin.Volume
	for rows.Next() {
		v, err := scanVolume(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range out {
		if v.Tags, err = c.tags(ctx, v.ID); err != nil {
			return nil, err
		}
		v.Orphaned = c.orphaned(v)
	}
	return out, nil
}

// orphaned: a bake's volume whose owning process is gone, a pool volume
// whose filler died half-way, or one a bake died taking (creating, still
// the pool's tags: see takeLock; the take lock is checked first, as the
// bake takes the owner lock before it lets go of it).
func (c *Cloud) orphaned(v *plugin.Volume) bool {
	c.mu.Lock()
	_, mine := c.owners[v.ID]
	c.mu.Unlock()
	if mine {
		return false
	}
	switch {
	case v.State == "filling":
		return !flock.Held(c.poolLock(v.SnapshotID))
	case v.State == "pooled":
		_, err := c.Snapshot(context.Background(), v.SnapshotID)
		return errors.Is(err, plugin.ErrNotFound) // its snapshot is gone
	case v.State == "creating" && owner.IsPooled(v.Tags):
		return !held(c.takeLock()) && !held(c.ownerLock(v.ID))
	}
	return owner.IsWork(v.Tags) && !flock.Held(c.ownerLock(v.ID))
}

// CreateVolume makes a sparse volume file from a snapshot. The calling
// process owns the volume (a flock) until it deletes it or exits.
func (c *Cloud) CreateVolume(ctx context.Context, r plugin.VolumeRequest) (v *plugin.Volume, err error) {
	snap := &plugin.Snapshot{State: "completed"}
	if r.SnapshotID != "" {
		if snap, err = c.Snapshot(ctx, r.SnapshotID); err != nil {
			return nil, fmt.Errorf("create volume: %w", err)
		}
	} else if r.SizeBytes <= 0 || r.SizeBytes%512 != 0 {
		return nil, fmt.Errorf("create volume: an empty volume needs a size in whole sectors, not %d bytes", r.SizeBytes)
	}
	if snap.State != "completed" {
		return nil, fmt.Errorf("create volume: snapshot %s is %s", snap.ID, snap.State)
	}
	size := r.SizeBytes
	if size == 0 {
		size = snap.SizeBytes
	}
	if size < snap.SizeBytes {
		return nil, fmt.Errorf("create volume: %d bytes is smaller than snapshot %s (%d bytes)", size, snap.ID, snap.SizeBytes)
	}
	if snap.ID != "" {
		if v, err := c.takePooled(ctx, snap.ID, size, r.Tags); v != nil || err != nil {
			return v, err
		}
	}
	id := ids.New("vol")
	lock, err := flock.TryExclusive(c.ownerLock(id))
	if err != nil {
		return nil, fmt.Errorf("create volume %s: %w", id, err)
	}
	c.mu.Lock()
	c.owners[id] = lock
	c.mu.Unlock()
	path := c.VolumePath(id)
	defer func() {
		if err != nil {
			os.Remove(path)
			if _, derr := c.deleteRow(context.WithoutCancel(ctx), "volumes", id, ""); derr != nil {
				err = errors.Join(err, derr)
			}
			c.releaseOwner(id)
		}
	}()
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volumes(id,snapshot_id,size_bytes,state,created_at) VALUES(?,?,?,?,?)`, id, snap.ID, size, "creating", now()); err != nil {
			return err
		}
		return putTags(ctx, tx, id, r.Tags)
	})
	if err != nil {
		return nil, fmt.Errorf("create volume: %w", err)
	}
	if snap.ID == "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create volume %s: %w", id, err)
		}
		f.Close()
	} else if err := c.store.Restore(ctx, snap.ID, path); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", id, err)
	}
	if size > snap.SizeBytes {
		if err := os.Truncate(path, size); err != nil {
			return nil, fmt.Errorf("create volume %s: grow: %w", id, err)
		}
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE volumes SET state='available' WHERE id=?`, id); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", id, err)
	}
	c.log.Debug("volume created", "volume", id, "snapshot", snap.ID, "bytes", size)
	return c.Volume(ctx, id)
}

func (c *Cloud) releaseOwner(id string) {
	c.mu.Lock()
	if l := c.owners[id]; l != nil {
		l.Unlock()
		os.Remove(l.Path())
		delete(c.owners, id)
	}
	c.mu.Unlock()
}

// AdoptVolume makes this process the owner of an existing volume (for -V);
// it fails if another live process owns it.
func (c *Cloud) AdoptVolume(ctx context.Context, id string) (*plugin.Volume, error) {
	v, err := c.Volume(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	_, mine := c.owners[id]
	c.mu.Unlock()
	if !mine {
		lock, err := flock.TryExclusive(c.ownerLock(id))
		if err != nil {
			return nil, fmt.Errorf("volume %s is in use by another bake: %w", id, err)
		}
		c.mu.Lock()
		c.owners[id] = lock
		c.mu.Unlock()
	}
	return v, nil
}

// AttachVolume attaches the volume's file as a loop device. The device
// argument is ignored: the kernel picks the loop number.
func (c *Cloud) AttachVolume(ctx context.Context, id, device string) (plugin.Attachment, error) {
	v, err := c.Volume(ctx, id)
	if err != nil {
		return plugin.Attachment{}, fmt.Errorf("attach: %w", err)
	}
	if v.State != "available" {
		return plugin.Attachment{}, fmt.Errorf("attach %s: volume is %s, not available", id, v.State)
	}
	d, err := loop.Attach(ctx, c.VolumePath(id), loop.Options{LockPath: filepath.Join(c.lockDir, "loop.lock")})
	if err != nil {
		return plugin.Attachment{}, fmt.Errorf("attach %s: %w", id, err)
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE volumes SET state='in-use', device=? WHERE id=?`, d.Path, id); err != nil {
		return plugin.Attachment{}, fmt.Errorf("attach %s: %w", id, errors.Join(err, d.Detach()))
	}
	c.mu.Lock()
	c.attached[id] = d
	c.writeback[id] = startWriteback(c.VolumePath(id))
	c.mu.Unlock()
	c.log.Debug("volume attached", "volume", id, "device", d.Path)
	return plugin.Attachment{VolumeID: id, Device: d.Path, LocalPath: d.Path}, nil
}

// DetachVolume detaches the loop device.
func (c *Cloud) DetachVolume(ctx context.Context, id string) error {
	c.mu.Lock()
	d, stop := c.attached[id], c.writeback[id]
	delete(c.attached, id)
	delete(c.writeback, id)
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if d != nil {
		if err := d.Detach(); err != nil {
			return fmt.Errorf("detach %s: %w", id, err)
		}
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE volumes SET state='available', device='' WHERE id=?`, id); err != nil {
		return fmt.Errorf("detach %s: %w", id, err)
	}
	return nil
}

// DeleteVolume removes a volume. It refuses one that another live process
// owns or that is still attached.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	v, err := c.Volume(ctx, id)
	if err != nil {
		return fmt.Errorf("delete volume: %w", err)
	}
	c.mu.Lock()
	_, mine := c.owners[id]
	_, att := c.attached[id]
	c.mu.Unlock()
	if att {
		return fmt.Errorf("delete volume %s: still attached at %s", id, v.Device)
	}
	if !mine {
		lock, err := flock.TryExclusive(c.ownerLock(id))
		if err != nil {
			return fmt.Errorf("delete volume %s: a running bake owns it: %w", id, err)
		}
		c.mu.Lock()
		c.owners[id] = lock
		c.mu.Unlock()
		if v.Device != "" {
			if b := loop.WaitDetached(c.VolumePath(id), 3*time.Second); len(b) > 0 {
				return fmt.Errorf("delete volume %s: still attached (%v); unmount it and run `losetup -d %s`", id, b, v.Device)
			}
		}
	}
	if err := os.Remove(c.VolumePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	if _, err := c.deleteRow(ctx, "volumes", id, ""); err != nil {
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	c.releaseOwner(id)
	c.log.Debug("volume deleted", "volume", id)
	return nil
}
