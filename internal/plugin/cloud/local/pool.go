package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// The volume pool keeps, per base snapshot, a number of ready volumes (the
// Bakery's pool of base volumes, which Aminator dropped). A bake takes one
// in constant time — one UPDATE — instead of making a volume, and the pool
// is refilled in the background; a bake never waits for it and makes its
// own volume when the pool is empty.

const poolSchema = `
CREATE TABLE IF NOT EXISTS pool_targets (
	snapshot_id TEXT PRIMARY KEY,
	size INTEGER NOT NULL
);`

func (c *Cloud) poolLock(snap string) string {
	return filepath.Join(c.lockDir, "pool-"+snap+".lock")
}

// takeLock is held (shared) by every bake from the moment it claims a
// pooled volume (state creating) until it holds the volume's owner lock:
// gc takes a pool volume left creating for a killed bake's only when
// neither is held.
func (c *Cloud) takeLock() string { return filepath.Join(c.lockDir, "pool-take.lock") }

// takePooled claims a ready volume of the snapshot and size, or returns nil.
func (c *Cloud) takePooled(ctx context.Context, snap string, size int64, tags plugin.Tags) (*plugin.Volume, error) {
	taking, err := flock.Shared(c.takeLock())
	if err != nil {
		return nil, fmt.Errorf("take a pooled volume: %w", err)
	}
	defer taking.Unlock()
	var id string
	err = c.db.QueryRowContext(ctx, `UPDATE volumes SET state='creating' WHERE id = (
		SELECT id FROM volumes WHERE state='pooled' AND snapshot_id=? AND size_bytes=? ORDER BY created_at LIMIT 1) RETURNING id`, snap, size).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take a pooled volume: %w", err)
	}
	lock, err := flock.TryExclusive(c.ownerLock(id))
	if err != nil {
		return nil, fmt.Errorf("take pooled volume %s: %w", id, errors.Join(err, c.giveBack(ctx, id)))
	}
	c.mu.Lock()
	c.owners[id] = lock
	c.mu.Unlock()
	taking.Unlock()
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_id=?`, id); err != nil {
			return err
		}
		if err := putTags(ctx, tx, id, tags); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE volumes SET state='available' WHERE id=?`, id)
		return err
	})
	if err != nil {
		err = errors.Join(err, c.giveBack(ctx, id))
		c.releaseOwner(id)
		return nil, fmt.Errorf("take pooled volume %s: %w", id, err)
	}
	c.log.Debug("volume taken from the pool", "volume", id, "snapshot", snap)
	if c.poolTaken != nil {
		c.poolTaken(snap)
	}
	return c.Volume(ctx, id)
}

// giveBack returns a volume takePooled claimed to the pool.
func (c *Cloud) giveBack(ctx context.Context, id string) error {
	if _, err := c.db.ExecContext(context.WithoutCancel(ctx), `UPDATE volumes SET state='pooled' WHERE id=?`, id); err != nil {
		return fmt.Errorf("give volume %s back to the pool: %w", id, err)
	}
	return nil
}

// FillPool sets the pool target of a snapshot (when f.Target >= 0) and
// makes volumes until that many are ready (see plugin.Pool). If another
// process is filling the same pool it returns at once.
func (c *Cloud) FillPool(ctx context.Context, f plugin.PoolFill) (made int, err error) {
	snap, target := f.Snapshot, f.Target
	s, err := c.Snapshot(ctx, snap)
	if err != nil {
		return 0, fmt.Errorf("pool: %w", err)
	}
	if target >= 0 {
		if _, err := c.db.ExecContext(ctx, `INSERT INTO pool_targets(snapshot_id,size) VALUES(?,?) ON CONFLICT(snapshot_id) DO UPDATE SET size=excluded.size`, snap, target); err != nil {
			return 0, fmt.Errorf("pool: %w", err)
		}
	}
	lock, err := flock.TryExclusive(c.poolLock(snap))
	if errors.Is(err, flock.ErrLocked) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer lock.Unlock()
	for {
		var want, ready int
		err := c.db.QueryRowContext(ctx, `SELECT size FROM pool_targets WHERE snapshot_id=?`, snap).Scan(&want)
		if errors.Is(err, sql.ErrNoRows) {
			return made, nil // drained meanwhile
		}
		if err != nil {
			return made, fmt.Errorf("pool of %s: %w", snap, err)
		}
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM volumes WHERE state='pooled' AND snapshot_id=?`, snap).Scan(&ready); err != nil {
			return made, fmt.Errorf("pool of %s: %w", snap, err)
		}
		if ready >= want {
			return made, nil
		}
		if err := c.makePooled(ctx, s); err != nil {
			return made, err
		}
		made++
	}
}

func (c *Cloud) makePooled(ctx context.Context, s *plugin.Snapshot) (err error) {
	id := ids.New("vol")
	path := c.VolumePath(id)
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO volumes(id,snapshot_id,size_bytes,state,created_at) VALUES(?,?,?,?,?)`, id, s.ID, s.SizeBytes, "filling", now()); err != nil {
			return err
		}
		return putTags(ctx, tx, id, plugin.Tags{owner.Purpose: owner.PurposePool})
	})
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(path)
			if _, derr := c.deleteRow(context.WithoutCancel(ctx), "volumes", id, ""); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	if err := c.store.Restore(ctx, s.ID, path); err != nil {
		return fmt.Errorf("pool volume %s: %w", id, err)
	}
	crashpoint.Hit("pool-refill")
	// Ready only if the pool still wants it: the snapshot may have been
	// deleted or the pool drained while the volume was made.
	res, err := c.db.ExecContext(ctx, `UPDATE volumes SET state='pooled' WHERE id=? AND EXISTS (SELECT 1 FROM pool_targets WHERE snapshot_id=?)
		AND EXISTS (SELECT 1 FROM snapshots WHERE id=?)`, id, s.ID, s.ID)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("pool: %w", err)
	} else if n == 0 {
		return errors.New("pool: the snapshot or its pool went away")
	}
	c.log.Debug("pool volume ready", "volume", id, "snapshot", s.ID)
	return nil
}

// DrainPool deletes the ready volumes of a snapshot ("" for every
// snapshot) and forgets its target.
func (c *Cloud) DrainPool(ctx context.Context, snap string) (int, error) {
	q, args := `SELECT id FROM volumes WHERE state='pooled'`, []any{}
	forget, fargs := `DELETE FROM pool_targets`, []any{}
	if snap != "" {
		q += ` AND snapshot_id=?`
		args = append(args, snap)
		forget += ` WHERE snapshot_id=?`
		fargs = append(fargs, snap)
	}
	if _, err := c.db.ExecContext(ctx, forget, fargs...); err != nil {
		return 0, fmt.Errorf("drain pool: %w", err)
	}
	vols, err := c.ids(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("drain pool: %w", err)
	}
	n := 0
	for _, id := range vols {
		taken, err := c.deleteRow(ctx, "volumes", id, "state='pooled'")
		if err != nil {
			return n, fmt.Errorf("drain pool: %w", err)
		}
		if taken { // not taken by a bake meanwhile
			os.Remove(c.VolumePath(id))
			n++
		}
	}
	return n, nil
}

// PoolStatus lists the pooled snapshots.
func (c *Cloud) PoolStatus(ctx context.Context) ([]plugin.PoolStatus, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT t.snapshot_id, t.size, (SELECT count(*) FROM volumes v WHERE v.state='pooled' AND v.snapshot_id=t.snapshot_id) FROM pool_targets t`)
	if err != nil {
		return nil, fmt.Errorf("pool status: %w", err)
	}
	out := []plugin.PoolStatus{}
	for rows.Next() {
		var p plugin.PoolStatus
		if err := rows.Scan(&p.SnapshotID, &p.Target, &p.Ready); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pool status: %w", err)
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pool status: %w", err)
	}
	for i := range out {
		if out[i].Images, err = c.snapshotUsers(ctx, out[i].SnapshotID); err != nil {
			return nil, fmt.Errorf("pool status: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SnapshotID < out[j].SnapshotID })
	return out, nil
}
