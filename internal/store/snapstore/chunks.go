package snapstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// DefaultChunkSize is 512 KiB: the EBS direct APIs' block size, so a
// snapshot can later be pushed to EC2 chunk for chunk. See BENCHMARKS.md
// for the measurement behind it.
const DefaultChunkSize = 512 << 10

// Chunks is a content-addressed, deduplicating snapshot store, in the
// manner of restic's repository: fixed-size chunks named by their SHA-256,
// stored once however many snapshots use them, zstd-compressed when that
// helps, zero chunks not stored at all. A snapshot's manifest is written
// only after its chunks are durable, so a crash never leaves a visible
// half snapshot; gc removes chunks no manifest names; every read verifies
// the hash.
//
// On a filesystem with reflinks (xfs, btrfs) it also keeps, per snapshot,
// a clone of the volume it was made from (for a file on another
// filesystem, such as an imported image, a copy of it): new volumes are
// clones of it (instant), and a volume's next snapshot reads only the
// chunks whose blocks are no longer the clone's — the bytes that changed —
// and stores those that do not compress as clones of the
// volume's blocks, so a bake's data is written to disk once.
//
//	chunks/ab/abcdef...   1 byte format (0 raw, 1 zstd) + data, or (2, reflink
//	                      stores) a 4 KiB header block + data: block-aligned,
//	                      a clone of the volume's blocks, not a copy
//	snapshots/ID.json     manifests
//	cache/ID.img          reflink clones (reflink filesystems only), each with
//	                      an xattr naming the manifest it holds (its hash)
//	quarantine/HASH       bad chunks fsck --repair or a Put moved aside
//
// A clone is trusted only while its record matches its manifest: Restore
// clones it, and a volume's next snapshot takes from the parent's manifest
// the chunks whose blocks are provably the clone's at the same offsets
// (the same physical addresses), reading the rest. Fsck verifies every
// clone's bytes and drops one that differs; a chunk that is bad when a Put
// would reuse it is quarantined and stored again.
type Chunks struct {
	dir       string
	chunkSize int
	compress  bool
	reflink   bool
	log       *slog.Logger
	enc       *zstd.Encoder
	dec       *zstd.Decoder
	// beforeManifest is a test hook: it runs after the chunks are durable
	// and before the manifest is written (a crash there must leave nothing visible).
	beforeManifest func() error
}

// ChunkOptions configure a chunk store.
type ChunkOptions struct {
	ChunkSize int
	Compress  bool
	Log       *slog.Logger
}

// NewChunks opens (creating) a chunk store in dir.
func NewChunks(dir string, o ChunkOptions) (*Chunks, error) {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < 4096 || o.ChunkSize&(o.ChunkSize-1) != 0 {
		return nil, fmt.Errorf("chunk size %d: a power of two of at least 4096", o.ChunkSize)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"chunks", "snapshots", "cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		return nil, err
	}
	c := &Chunks{dir: dir, chunkSize: o.ChunkSize, compress: o.Compress, log: o.Log, enc: enc, dec: dec}
	c.reflink = CanReflink(filepath.Join(dir, "tmp"))
	return c, nil
}

// Reflink reports whether the store's filesystem clones files.
func (c *Chunks) Reflink() bool { return c.reflink }

// Dir is the store's directory.
func (c *Chunks) Dir() string { return c.dir }

func (c *Chunks) manifestPath(id string) string { return filepath.Join(c.dir, "snapshots", id+".json") }

func (c *Chunks) cachePath(id string) string { return filepath.Join(c.dir, "cache", id+".img") }

func (c *Chunks) chunkPath(h string) string { return filepath.Join(c.dir, "chunks", h[:2], h) }

func (c *Chunks) gcLock() string { return filepath.Join(c.dir, "gc.lock") }

// readerLock keeps gc from sweeping while chunks are written or read.
func (c *Chunks) readerLock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(c.gcLock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Delete removes a snapshot's manifest and clone; gc frees its chunks.
func (c *Chunks) Delete(ctx context.Context, id string) error {
	os.Remove(c.cachePath(id))
	if err := os.Remove(c.manifestPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}
