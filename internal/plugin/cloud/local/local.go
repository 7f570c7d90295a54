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
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/snapstore"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/sys/loop"
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
		Store: storeSetup{},
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
	// writeback stops each attached volume's write-back (startWriteback).
	writeback map[string]func()

	// poolTaken is called after a bake takes a pooled volume of a
	// snapshot, to refill the pool in the background.
	poolTaken func(snapshotID string)
}

var (
	_ plugin.Cloud          = (*Cloud)(nil)
	_ plugin.VolumeAdopter  = (*Cloud)(nil)
	_ plugin.ScratchVolumer = (*Cloud)(nil)
	_ io.Closer             = (*Cloud)(nil)
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
	db, err := openDB(filepath.Join(o.StateDir, "aminator.db"), syncFull)
	if err != nil {
		return nil, err
	}
	return &Cloud{dir: o.StateDir, lockDir: o.LockDir, region: o.Region, zone: o.Zone, db: db, store: store, log: o.Log,
		attached: map[string]*loop.Device{}, owners: map[string]*flock.Lock{}, writeback: map[string]func(){}}, nil
}

// Close releases the database and any volume locks still held.
func (c *Cloud) Close() error {
	c.mu.Lock()
	for id, l := range c.owners {
		l.Unlock()
		delete(c.owners, id)
	}
	for id, stop := range c.writeback {
		stop()
		delete(c.writeback, id)
	}
	c.mu.Unlock()
	return c.db.Close()
}

// Dir is the state directory.
func (c *Cloud) Dir() string { return c.dir }

// LockDir is the directory of the cloud's flocks.
func (c *Cloud) LockDir() string { return c.lockDir }

// VolumePath is the file behind a volume.
func (c *Cloud) VolumePath(id string) string {
	return filepath.Join(c.dir, "data", "volumes", id+".img")
}

func (c *Cloud) ownerLock(id string) string { return filepath.Join(c.lockDir, id+".lock") }

// Host describes this machine.
func (c *Cloud) Host(ctx context.Context) (plugin.Host, error) {
	h, _ := os.Hostname()
	return plugin.Host{Region: c.region, AvailabilityZone: c.zone, InstanceID: h}, nil
}

// Store is the snapshot store.
func (c *Cloud) Store() *snapstore.Chunks { return c.store }
