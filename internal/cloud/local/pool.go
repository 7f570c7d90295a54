package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/plugin"
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

// PoolStatus is one pooled snapshot.
type PoolStatus struct {
	SnapshotID string   `json:"snapshot_id"`
	Images     []string `json:"images"`
	Target     int      `json:"target"`
	Ready      int      `json:"ready"`
}

func (c *Cloud) poolLock(snap string) string {
	return filepath.Join(c.lockDir, "pool-"+snap+".lock")
}

// takePooled claims a ready volume of the snapshot and size, or returns nil.
func (c *Cloud) takePooled(ctx context.Context, snap string, size int64, tags plugin.Tags) (*plugin.Volume, error) {
	var id string
	err := c.db.QueryRowContext(ctx, `UPDATE volumes SET state='creating' WHERE id = (
		SELECT id FROM volumes WHERE state='pooled' AND snapshot_id=? AND size_bytes=? ORDER BY created_at LIMIT 1) RETURNING id`, snap, size).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take a pooled volume: %w", err)
	}
	lock, err := flock.TryExclusive(c.ownerLock(id))
	if err != nil {
		c.db.ExecContext(context.WithoutCancel(ctx), `UPDATE volumes SET state='pooled' WHERE id=?`, id) // give it back
		return nil, fmt.Errorf("take pooled volume %s: %w", id, err)
	}
	c.mu.Lock()
	c.owners[id] = lock
	c.mu.Unlock()
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
		c.db.ExecContext(context.WithoutCancel(ctx), `UPDATE volumes SET state='pooled' WHERE id=?`, id) // give it back
		c.releaseOwner(id)
		return nil, fmt.Errorf("take pooled volume %s: %w", id, err)
	}
	c.log.Debug("volume taken from the pool", "volume", id, "snapshot", snap)
	if c.OnPoolTake != nil {
		c.OnPoolTake(snap)
	}
	return c.Volume(ctx, id)
}

// FillPool sets the pool target of a snapshot (when target >= 0) and makes
// volumes until that many are ready. If another process is filling the
// same pool it returns at once.
func (c *Cloud) FillPool(ctx context.Context, snap string, target int) (made int, err error) {
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
		if err := c.db.QueryRowContext(ctx, `SELECT size FROM pool_targets WHERE snapshot_id=?`, snap).Scan(&want); err != nil {
			return made, nil // drained meanwhile
		}
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM volumes WHERE state='pooled' AND snapshot_id=?`, snap).Scan(&ready); err != nil {
			return made, err
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
	if _, err := c.db.ExecContext(ctx, `INSERT INTO volumes(id,snapshot_id,size_bytes,state,created_at) VALUES(?,?,?,?,?)`, id, s.ID, s.SizeBytes, "filling", now()); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	putTags(ctx, c.db, id, plugin.Tags{"purpose": "pool"})
	defer func() {
		if err != nil {
			os.Remove(path)
			c.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM volumes WHERE id=?`, id)
			c.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM tags WHERE resource_id=?`, id)
		}
	}()
	if err := c.store.Restore(ctx, s.ID, path); err != nil {
		return fmt.Errorf("pool volume %s: %w", id, err)
	}
	// Ready only if the pool still wants it: the snapshot may have been
	// deleted or the pool drained while the volume was made.
	res, err := c.db.ExecContext(ctx, `UPDATE volumes SET state='pooled' WHERE id=? AND EXISTS (SELECT 1 FROM pool_targets WHERE snapshot_id=?)
		AND EXISTS (SELECT 1 FROM snapshots WHERE id=?)`, id, s.ID, s.ID)
	if err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("pool: the snapshot or its pool went away")
	}
	c.log.Debug("pool volume ready", "volume", id, "snapshot", s.ID)
	return nil
}

// DrainPool deletes the ready volumes of a snapshot ("" for every
// snapshot) and forgets its target.
func (c *Cloud) DrainPool(ctx context.Context, snap string) (int, error) {
	q, args := `SELECT id FROM volumes WHERE state='pooled'`, []any{}
	if snap != "" {
		q += ` AND snapshot_id=?`
		args = append(args, snap)
		c.db.ExecContext(ctx, `DELETE FROM pool_targets WHERE snapshot_id=?`, snap)
	} else {
		c.db.ExecContext(ctx, `DELETE FROM pool_targets`)
	}
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	var vols []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		vols = append(vols, id)
	}
	rows.Close()
	n := 0
	for _, id := range vols {
		res, err := c.db.ExecContext(ctx, `DELETE FROM volumes WHERE id=? AND state='pooled'`, id)
		if err != nil {
			return n, err
		}
		if k, _ := res.RowsAffected(); k == 1 { // not taken meanwhile
			os.Remove(c.VolumePath(id))
			c.db.ExecContext(ctx, `DELETE FROM tags WHERE resource_id=?`, id)
			n++
		}
	}
	return n, nil
}

// PoolStatus lists the pooled snapshots.
func (c *Cloud) PoolStatus(ctx context.Context) ([]PoolStatus, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT t.snapshot_id, t.size, (SELECT count(*) FROM volumes v WHERE v.state='pooled' AND v.snapshot_id=t.snapshot_id) FROM pool_targets t`)
	if err != nil {
		return nil, err
	}
	var out []PoolStatus
	for rows.Next() {
		var p PoolStatus
		if err := rows.Scan(&p.SnapshotID, &p.Target, &p.Ready); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, p)
	}
	rows.Close()
	for i := range out {
		out[i].Images, _ = c.snapshotUsers(ctx, out[i].SnapshotID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SnapshotID < out[j].SnapshotID })
	return out, nil
}
