package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/aminator-go/aminator/internal/plugin"
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

func openDB(path string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
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

func putTags(ctx context.Context, x execer, id string, tags plugin.Tags) error {
	for k, v := range tags {
		if _, err := x.ExecContext(ctx, `INSERT INTO tags(resource_id,key,value) VALUES(?,?,?)
			ON CONFLICT(resource_id,key) DO UPDATE SET value=excluded.value`, id, k, v); err != nil {
			return fmt.Errorf("tag %s: %w", id, err)
		}
	}
	return nil
}

func (c *Cloud) tags(ctx context.Context, id string) (plugin.Tags, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key, value FROM tags WHERE resource_id=?`, id)
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", id, err)
	}
	defer rows.Close()
	t := plugin.Tags{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("tags of %s: %w", id, err)
		}
		t[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tags of %s: %w", id, err)
	}
	return t, nil
}

// CreateTags adds or replaces tags on an image, snapshot or volume; one
// that does not exist wraps plugin.ErrNotFound (it is checked in the same
// transaction, so a resource deleted meanwhile leaves no tags behind).
func (c *Cloud) CreateTags(ctx context.Context, id string, tags plugin.Tags) error {
	return c.inTx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, id); err != nil {
			return fmt.Errorf("tag %s: %w", id, err)
		}
		return putTags(ctx, tx, id, tags)
	})
}

// exists wraps plugin.ErrNotFound unless id is a registered image,
// snapshot or volume.
func exists(ctx context.Context, tx *sql.Tx, id string) error {
	var table string
	switch {
	case strings.HasPrefix(id, "ami-"):
		table = "images"
	case strings.HasPrefix(id, "snap-"):
		table = "snapshots"
	case strings.HasPrefix(id, "vol-"):
		table = "volumes"
	default:
		return fmt.Errorf("no image, snapshot or volume %s: %w", id, plugin.ErrNotFound)
	}
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id=?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no %s %s: %w", strings.TrimSuffix(table, "s"), id, plugin.ErrNotFound)
	}
	return err
}

// DeleteTags removes tags by key; keys or a resource that are not there
// are not an error.
func (c *Cloud) DeleteTags(ctx context.Context, id string, keys ...string) error {
	for _, k := range keys {
		if _, err := c.db.ExecContext(ctx, `DELETE FROM tags WHERE resource_id=? AND key=?`, id, k); err != nil {
			return fmt.Errorf("untag %s: %w", id, err)
		}
	}
	return nil
}

// FindImages lists the images carrying all the given tags, newest first.
func (c *Cloud) FindImages(ctx context.Context, tags plugin.Tags) ([]*plugin.Image, error) {
	all, err := c.Images(ctx)
	if err != nil {
		return nil, err
	}
	var out []*plugin.Image
next:
	for _, im := range all {
		for k, v := range tags {
			if im.Tags[k] != v {
				continue next
			}
		}
		out = append(out, im)
	}
	return out, nil
}

// Manifest returns an image's package manifest, sorted by name.
func (c *Cloud) Manifest(ctx context.Context, imageID string) ([]plugin.Package, error) {
	if _, err := c.Image(ctx, plugin.ImageQuery{ID: imageID}); err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT name, version, arch FROM image_packages WHERE image_id=? ORDER BY name, arch`, imageID)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", imageID, err)
	}
	defer rows.Close()
	var out []plugin.Package
	for rows.Next() {
		var p plugin.Package
		if err := rows.Scan(&p.Name, &p.Version, &p.Arch); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

const imageCols = `id,name,description,architecture,virtualization_type,root_device_name,block_device_mappings,ena_support,sriov_net_support,state,created_at`

func scanImage(s scanner) (*plugin.Image, error) {
	var im plugin.Image
	var bdm, created string
	var ena, sriov int
	if err := s.Scan(&im.ID, &im.Name, &im.Description, &im.Architecture, &im.VirtualizationType, &im.RootDeviceName, &bdm, &ena, &sriov, &im.State, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(bdm), &im.BlockDevices); err != nil {
		return nil, fmt.Errorf("image %s: block device mappings: %w", im.ID, err)
	}
	im.EnaSupport, im.SriovNetSupport = ena != 0, sriov != 0
	im.CreatedAt = parseTime(created)
	im.RootDeviceType = "ebs"
	return &im, nil
}

// Images lists images, newest first.
func (c *Cloud) Images(ctx context.Context) ([]*plugin.Image, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+imageCols+` FROM images ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []*plugin.Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list images: %w", err)
		}
		out = append(out, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, im := range out {
		if im.Tags, err = c.tags(ctx, im.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Image finds an image by id or exact name.
func (c *Cloud) Image(ctx context.Context, q plugin.ImageQuery) (*plugin.Image, error) {
	var row *sql.Row
	what := ""
	switch {
	case q.ID != "":
		row = c.db.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id=?`, q.ID)
		what = "id " + q.ID
	case q.Name != "":
		row = c.db.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE name=?`, q.Name)
		what = "name " + q.Name
	default:
		return nil, errors.New("image: give an id or a name")
	}
	im, err := scanImage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no image with %s in %s (see `aminate images list`): %w", what, c.dir, plugin.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", what, err)
	}
	if im.Tags, err = c.tags(ctx, im.ID); err != nil {
		return nil, err
	}
	return im, nil
}

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

// Snapshots lists snapshots, newest first.
func (c *Cloud) Snapshots(ctx context.Context) ([]*plugin.Snapshot, error) {
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

// Volumes lists volumes, newest first.
func (c *Cloud) Volumes(ctx context.Context) ([]*plugin.Volume, error) {
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
