package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

const snapCols = `id,volume_id,parent_id,size_bytes,description,state,created_at`

func scanSnapshot(s scanner) (*plugin.Snapshot, error) {
	var sn plugin.Snapshot
	var created string
	if err := s.Scan(&sn.ID, &sn.VolumeID, &sn.ParentID, &sn.SizeBytes, &sn.Description, &sn.State, &created); err != nil {
		return nil, err
	}
	sn.CreatedAt = parseTime(created)
	return &sn, nil
}

// Snapshot finds a snapshot by id.
func (c *Cloud) Snapshot(ctx context.Context, id string) (*plugin.Snapshot, error) {
	sn, err := scanSnapshot(c.db.QueryRowContext(ctx, `SELECT `+snapCols+` FROM snapshots WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no snapshot %s: %w", id, plugin.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if sn.Tags, err = c.tags(ctx, id); err != nil {
		return nil, err
	}
	return sn, nil
}

// ListSnapshots lists snapshots, newest first.
func (c *Cloud) ListSnapshots(ctx context.Context) ([]*plugin.Snapshot, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+snapCols+` FROM snapshots ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*plugin.Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		out = append(out, sn)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for _, sn := range out {
		if sn.Tags, err = c.tags(ctx, sn.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CreateSnapshot stores the volume's current data as a new snapshot. The
// row is "pending" until the data is stored, so a crash never shows a
// half snapshot as completed.
func (c *Cloud) CreateSnapshot(ctx context.Context, r plugin.SnapshotRequest) (*plugin.Snapshot, error) {
	v, err := c.Volume(ctx, r.VolumeID)
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	return c.snapshotFile(ctx, c.VolumePath(v.ID), v.ID, v.SnapshotID, r.Description, r.Tags)
}

func (c *Cloud) snapshotFile(ctx context.Context, path, volID, parent, desc string, tags plugin.Tags) (s *plugin.Snapshot, err error) {
	id := ids.New("snap")
	// While the snapshot is pending its maker holds this lock; gc removes
	// pending snapshots whose maker is gone.
	lock, err := flock.TryExclusive(c.ownerLock(id))
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	defer func() {
		lock.Unlock()
		os.Remove(lock.Path())
	}()
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO snapshots(id,volume_id,parent_id,description,state,created_at) VALUES(?,?,?,?,?,?)`, id, volID, parent, desc, "pending", now()); err != nil {
			return err
		}
		return putTags(ctx, tx, id, tags)
	})
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			bg := context.WithoutCancel(ctx)
			if derr := c.store.Delete(bg, id); derr != nil {
				err = errors.Join(err, derr)
			}
			if _, derr := c.deleteRow(bg, "snapshots", id, ""); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	st, err := c.store.Put(ctx, id, parent, path)
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", id, err)
	}
	if _, err := c.db.ExecContext(ctx, `UPDATE snapshots SET state='completed', size_bytes=? WHERE id=?`, st.Size, id); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", id, err)
	}
	crashpoint.Hit("after-row")
	c.log.Debug("snapshot created", "snapshot", id, "bytes", st.Size, "data", st.Data, "added", st.Added)
	return c.Snapshot(ctx, id)
}

// DeleteSnapshot removes a snapshot no image uses.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	if _, err := c.Snapshot(ctx, id); err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	users, err := c.snapshotUsers(ctx, id)
	if err != nil {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("delete snapshot %s: used by image %v (remove the image first)", id, users)
	}
	if _, err := c.DrainPool(ctx, id); err != nil {
		return fmt.Errorf("delete snapshot %s: drain its pool: %w", id, err)
	}
	if _, err := c.deleteRow(ctx, "snapshots", id, ""); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return c.store.Delete(ctx, id)
}
