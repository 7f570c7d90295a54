package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

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
