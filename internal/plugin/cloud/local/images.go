package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

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

// RegisterImage registers an image in one transaction: it is either fully
// there (row, mappings, tags) or not at all.
func (c *Cloud) RegisterImage(ctx context.Context, r plugin.ImageRequest) (*plugin.Image, error) {
	if r.Name == "" {
		return nil, errors.New("register image: empty name")
	}
	var root bool
	for _, b := range r.BlockDevices {
		if b.DeviceName == r.RootDeviceName && b.SnapshotID != "" {
			root = true
		}
		if b.SnapshotID != "" {
			if _, err := c.Snapshot(ctx, b.SnapshotID); err != nil {
				return nil, fmt.Errorf("register image %s: %w", r.Name, err)
			}
		}
	}
	if !root {
		return nil, fmt.Errorf("register image %s: no snapshot mapped at root device %s", r.Name, r.RootDeviceName)
	}
	bdm, err := json.Marshal(r.BlockDevices)
	if err != nil {
		return nil, err
	}
	id := ids.New("ami")
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO images(`+imageCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?)`,
			id, r.Name, r.Description, r.Architecture, r.VirtualizationType, r.RootDeviceName, string(bdm), r.EnaSupport, r.SriovNetSupport, "available", now()); err != nil {
			return err
		}
		for _, b := range r.BlockDevices {
			if b.SnapshotID == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO image_snapshots(image_id,snapshot_id) VALUES(?,?)`, id, b.SnapshotID); err != nil {
				return err
			}
		}
		for _, p := range r.Packages {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO image_packages(image_id,name,version,arch) VALUES(?,?,?,?)`, id, p.Name, p.Version, p.Arch); err != nil {
				return err
			}
		}
		return putTags(ctx, tx, id, r.Tags)
	})
	if isUnique(err) {
		prev, _ := c.Image(ctx, plugin.ImageQuery{Name: r.Name})
		pid := ""
		if prev != nil {
			pid = " (" + prev.ID + ")"
		}
		return nil, fmt.Errorf("register image: the name %q is taken%s; pick another with -n or -s: %w", r.Name, pid, plugin.ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("register image %s: %w", r.Name, err)
	}
	return c.Image(ctx, plugin.ImageQuery{ID: id})
}

// DeregisterImage removes an image (its snapshots stay).
func (c *Cloud) DeregisterImage(ctx context.Context, id string) error {
	found, err := c.deleteRow(ctx, "images", id, "")
	if err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("deregister %s: %w", id, plugin.ErrNotFound)
	}
	return nil
}

// ImportOptions describe an image brought from a raw disk file.
type ImportOptions = plugin.ImportRequest

// Import registers a raw disk image file as an image.
func (c *Cloud) Import(ctx context.Context, file string, o ImportOptions) (*plugin.Image, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("import %s: not a regular file", file)
	}
	if st.Size() == 0 || st.Size()%512 != 0 {
		return nil, fmt.Errorf("import %s: size %d is not a whole number of 512-byte sectors", file, st.Size())
	}
	if _, err := c.Image(ctx, plugin.ImageQuery{Name: o.Name}); err == nil {
		return nil, fmt.Errorf("import: the name %q is taken: %w", o.Name, plugin.ErrExists)
	}
	snap, err := c.snapshotFile(ctx, file, "", "", "imported from "+filepath.Base(file), o.Tags)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, err)
	}
	gib := (snap.SizeBytes + (1<<30 - 1)) >> 30
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{
		Name: o.Name, Description: o.Description, Architecture: o.Architecture,
		VirtualizationType: o.VirtualizationType, RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: snap.ID, VolumeSizeGiB: gib, VolumeType: "local", DeleteOnTermination: true}},
		Tags:         o.Tags,
	})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", file, errors.Join(err, c.DeleteSnapshot(context.WithoutCancel(ctx), snap.ID)))
	}
	return im, nil
}
