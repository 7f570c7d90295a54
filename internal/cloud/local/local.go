// Package local is the embedded cloud: it runs the whole pipeline on one
// Linux machine with no account. Volumes are sparse image files attached as
// loop devices, snapshot data lives in a snapstore.Store, and images,
// snapshots, volumes and tags are rows in a SQLite database in the state
// directory (default /var/lib/aminator):
//
//	aminator.db      the registry
//	data/volumes/    vol-*.img, one sparse file per volume
//	data/store/      the snapshot store (snapstore.Chunks)
//	mnt/             mount points of bakes
//	lock/            flock files (volume owners, loop allocation)
//	tmp/             scratch files
//
// data/ may be a reflink-capable filesystem of its own (aminate init
// --store-fs xfs): volumes are then clones of their snapshot, made in
// milliseconds, and snapshots read only the blocks a bake changed.
package local

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/loop"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/snapstore"
)

// Settings are the local cloud's plugin settings (plugins: cloud.local:).
type Settings struct {
	// Zone is reported as the availability zone.
	Zone string `yaml:"zone"`
	// ChunkSize of the snapshot store, in bytes (a power of two).
	ChunkSize int `yaml:"chunk_size"`
	// Compress stores chunks zstd-compressed when that saves space.
	Compress bool `yaml:"compress"`
}

func init() {
	plugin.Register(plugin.Registration{
		Kind: plugin.KindCloud, Name: "local",
		Description: "images, snapshots and volumes on this machine (SQLite registry, loop devices)",
		NewConfig:   func() any { return &Settings{Zone: "local-a", ChunkSize: snapstore.DefaultChunkSize, Compress: true} },
		New: func(cfg any, d plugin.Deps) (any, error) {
			s := cfg.(*Settings)
			return Open(Options{StateDir: d.StateDir, LockDir: d.LockDir, Region: d.Region, Zone: s.Zone, Log: d.Logger, ChunkSize: s.ChunkSize, Compress: s.Compress})
		},
	})
}

// Cloud is the local cloud.
type Cloud struct {
	dir     string
	lockDir string
	region  string
	zone    string
	db      *sql.DB
	store   *snapstore.Chunks
	log     *slog.Logger

	mu       sync.Mutex
	attached map[string]*loop.Device
	owners   map[string]*flock.Lock

	// OnPoolTake is called after a bake takes a pooled volume of a
	// snapshot, to refill the pool in the background.
	OnPoolTake func(snapshotID string)
}

var (
	_ plugin.Cloud         = (*Cloud)(nil)
	_ plugin.VolumeAdopter = (*Cloud)(nil)
	_ io.Closer            = (*Cloud)(nil)
)

// Options say where the local cloud lives.
type Options struct {
	StateDir  string
	LockDir   string // default StateDir/lock
	Region    string // default "local"
	Zone      string // default "local-a"
	Log       *slog.Logger
	ChunkSize int
	Compress  bool
}

// Open opens (creating if needed) the state directory.
func Open(o Options) (*Cloud, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LockDir == "" {
		o.LockDir = filepath.Join(o.StateDir, "lock")
	}
	if o.Region == "" {
		o.Region = "local"
	}
	if o.Zone == "" {
		o.Zone = "local-a"
	}
	if err := checkDataFS(o.StateDir); err != nil {
		return nil, err
	}
	for _, d := range []string{o.StateDir, filepath.Join(o.StateDir, "data", "volumes"), filepath.Join(o.StateDir, "mnt"), filepath.Join(o.StateDir, "tmp"), o.LockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	store, err := snapstore.NewChunks(filepath.Join(o.StateDir, "data", "store"), snapstore.ChunkOptions{ChunkSize: o.ChunkSize, Compress: o.Compress, Log: o.Log})
	if err != nil {
		return nil, err
	}
	db, err := openDB(filepath.Join(o.StateDir, "aminator.db"))
	if err != nil {
		return nil, err
	}
	return &Cloud{dir: o.StateDir, lockDir: o.LockDir, region: o.Region, zone: o.Zone, db: db, store: store, log: o.Log,
		attached: map[string]*loop.Device{}, owners: map[string]*flock.Lock{}}, nil
}

// Close releases the database and any volume locks still held.
func (c *Cloud) Close() error {
	c.mu.Lock()
	for id, l := range c.owners {
		l.Unlock()
		delete(c.owners, id)
	}
	c.mu.Unlock()
	return c.db.Close()
}

// Dir is the state directory.
func (c *Cloud) Dir() string { return c.dir }

// VolumePath is the file behind a volume.
func (c *Cloud) VolumePath(id string) string {
	return filepath.Join(c.dir, "data", "volumes", id+".img")
}

func (c *Cloud) ownerLock(id string) string { return filepath.Join(c.lockDir, id+".lock") }

// orphaned: a bake's volume whose owning process is gone, or a pool
// volume whose filler died half-way.
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
	}
	return v.Tags["purpose"] == "amination" && !flock.Held(c.ownerLock(v.ID))
}

// Host describes this machine.
func (c *Cloud) Host(ctx context.Context) (plugin.Host, error) {
	h, _ := os.Hostname()
	return plugin.Host{Region: c.region, AvailabilityZone: c.zone, InstanceID: h}, nil
}

// Store is the snapshot store.
func (c *Cloud) Store() *snapstore.Chunks { return c.store }

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
	c.mu.Unlock()
	c.log.Debug("volume attached", "volume", id, "device", d.Path)
	return plugin.Attachment{VolumeID: id, Device: d.Path, LocalPath: d.Path}, nil
}

// DetachVolume detaches the loop device.
func (c *Cloud) DetachVolume(ctx context.Context, id string) error {
	c.mu.Lock()
	d := c.attached[id]
	delete(c.attached, id)
	c.mu.Unlock()
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
type ImportOptions struct {
	Name               string
	Description        string
	Architecture       string
	VirtualizationType string
	Tags               plugin.Tags
}

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
