package local

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

const schema = `
CREATE TABLE IF NOT EXISTS images (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	architecture TEXT NOT NULL,
	virtualization_type TEXT NOT NULL,
	root_device_name TEXT NOT NULL,
	block_device_mappings TEXT NOT NULL,
	ena_support INTEGER NOT NULL DEFAULT 0,
	sriov_net_support INTEGER NOT NULL DEFAULT 0,
	state TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL DEFAULT '',
	parent_id TEXT NOT NULL DEFAULT '',
	size_bytes INTEGER NOT NULL DEFAULT 0,
	description TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_snapshots (
	image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
	PRIMARY KEY (image_id, snapshot_id)
);
CREATE TABLE IF NOT EXISTS volumes (
	id TEXT PRIMARY KEY,
	snapshot_id TEXT NOT NULL DEFAULT '',
	size_bytes INTEGER NOT NULL,
	state TEXT NOT NULL,
	device TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_packages (
	image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	version TEXT NOT NULL,
	arch TEXT NOT NULL,
	PRIMARY KEY (image_id, name, arch)
);
CREATE TABLE IF NOT EXISTS tags (
	resource_id TEXT NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (resource_id, key)
);
`

// syncFull is the registry's synchronous mode. In WAL mode, NORMAL syncs
// the log only at checkpoints, so a commit already reported (an image id
// printed, a bake recorded as done) could vanish on power loss; FULL syncs
// the log at every commit, before the commit returns.
const syncFull = "FULL"

// openDB opens the registry; synchronous is SQLite's mode (syncFull but
// in the benchmark that measures what it costs).
func openDB(path, synchronous string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(" + synchronous + ")&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if _, err := db.Exec(schema + poolSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	return db, nil
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// inTx runs fn in a transaction, committed if fn succeeds and rolled back
// otherwise.
func (c *Cloud) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// deleteRow deletes the row of id in table, if cond (an SQL condition on
// the row, or "") holds, together with its tags, in one transaction. It
// reports whether there was such a row.
func (c *Cloud) deleteRow(ctx context.Context, table, id, cond string) (bool, error) {
	var n int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		q := `DELETE FROM ` + table + ` WHERE id=?`
		if cond != "" {
			q += ` AND ` + cond
		}
		res, err := tx.ExecContext(ctx, q, id)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_id=?`, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete %s from %s: %w", id, table, err)
	}
	return n > 0, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type scanner interface{ Scan(dest ...any) error }

// snapshotUsers names the images whose mappings use a snapshot.
func (c *Cloud) snapshotUsers(ctx context.Context, id string) ([]string, error) {
	out, err := c.ids(ctx, `SELECT image_id FROM image_snapshots WHERE snapshot_id=?`, id)
	if err != nil {
		return nil, fmt.Errorf("images using %s: %w", id, err)
	}
	sort.Strings(out)
	return out, nil
}

// ids runs a query whose rows are one string each.
func (c *Cloud) ids(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
