package snapstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/progress"
)

// DefaultChunkSize is 512 KiB: the EBS direct APIs' block size, so a
// snapshot can later be pushed to EC2 chunk for chunk. See BENCHMARKS.md
// for the measurement behind it.
const DefaultChunkSize = 512 << 10

// Manifest is a snapshot: its chunks in order ("" for an all-zero chunk,
// which is not stored) and the snapshot it was made from.
type Manifest struct {
	Version   int       `json:"version"`
	ID        string    `json:"id"`
	Parent    string    `json:"parent,omitempty"`
	Size      int64     `json:"size"`
	ChunkSize int       `json:"chunk_size"`
	Created   time.Time `json:"created"`
	Chunks    []string  `json:"chunks"`
}

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
// filesystem, such as an imported image, one assembled from its chunks):
// new volumes are clones of it (instant), and a volume's next snapshot
// reads only the extents that are no longer shared with it — the bytes
// that changed — and stores those that do not compress as clones of the
// volume's blocks, so a bake's data is written to disk once.
//
//	chunks/ab/abcdef...   1 byte format (0 raw, 1 zstd) + data, or (2, reflink
//	                      stores) a 4 KiB header block + data: block-aligned,
//	                      a clone of the volume's blocks, not a copy
//	snapshots/ID.json     manifests
//	cache/ID.img          reflink clones (reflink filesystems only)
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
func (c *Chunks) cachePath(id string) string    { return filepath.Join(c.dir, "cache", id+".img") }
func (c *Chunks) chunkPath(h string) string     { return filepath.Join(c.dir, "chunks", h[:2], h) }
func (c *Chunks) gcLock() string                { return filepath.Join(c.dir, "gc.lock") }

// LoadManifest reads a snapshot's manifest.
func (c *Chunks) LoadManifest(id string) (*Manifest, error) {
	b, err := os.ReadFile(c.manifestPath(id))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("snapshot %s: bad manifest: %w", id, err)
	}
	return &m, nil
}

// Size is the logical size of snapshot id.
func (c *Chunks) Size(id string) (int64, error) {
	m, err := c.LoadManifest(id)
	if err != nil {
		return 0, err
	}
	return m.Size, nil
}

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

// ErrCorrupt marks a chunk whose content does not match its hash.
var ErrCorrupt = errors.New("corrupt chunk")

// ReadChunk reads a chunk by its hash and verifies it.
func (c *Chunks) ReadChunk(h string) ([]byte, error) { return c.readChunk(h) }

// readChunk reads and verifies a chunk.
func (c *Chunks) readChunk(h string) ([]byte, error) {
	b, err := os.ReadFile(c.chunkPath(h))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", h, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("chunk %s: empty: %w", h, ErrCorrupt)
	}
	data := b[1:]
	switch b[0] {
	case formatRaw:
	case formatRawAligned:
		if len(b) < rawOffset {
			return nil, fmt.Errorf("chunk %s: short: %w", h, ErrCorrupt)
		}
		data = b[rawOffset:]
	case formatZstd:
		if data, err = c.dec.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("chunk %s: cannot decompress (%v): %w", h, err, ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("chunk %s: unknown format %d: %w", h, b[0], ErrCorrupt)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != h {
		return nil, fmt.Errorf("chunk %s: content does not match its hash: %w", h, ErrCorrupt)
	}
	return data, nil
}

// Restore writes snapshot id to the new file dst: a reflink clone of the
// snapshot's volume when the store has one, else the chunks, each verified
// against its hash, with zero chunks left as holes.
func (c *Chunks) Restore(ctx context.Context, id, dst string) error {
	m, err := c.LoadManifest(id)
	if err != nil {
		return err
	}
	if c.reflink {
		if err := Clone(c.cachePath(id), dst); err == nil {
			return nil
		}
	}
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(m.Size); err != nil {
		return err
	}
	want := make([]bool, len(m.Chunks))
	for i, h := range m.Chunks {
		want[i] = h != ""
	}
	bar := progress.Start(ctx, "restoring snapshot "+id, chunkBytes(want, m.Size, m.ChunkSize), progress.Bytes)
	defer bar.Done()
	err = parallel(ctx, want, runtime.GOMAXPROCS(0), func(i int) error {
		defer bar.Add(min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize)))
		data, err := c.readChunk(m.Chunks[i])
		if err == nil {
			_, err = tmp.WriteAt(data, int64(i)*int64(m.ChunkSize))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	if c.reflink {
		Clone(dst, c.cachePath(id)) // next time: a clone
	}
	return nil
}

// Delete removes a snapshot's manifest and clone; gc frees its chunks.
func (c *Chunks) Delete(ctx context.Context, id string) error {
	os.Remove(c.cachePath(id))
	if err := os.Remove(c.manifestPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}

// Snapshots lists the ids with a manifest.
func (c *Chunks) Snapshots() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, "snapshots"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}
