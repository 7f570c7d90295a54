package snapstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/progress"
	"github.com/aminator-go/aminator/internal/sparse"
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
// a clone of the volume it was made from: new volumes are clones of it
// (instant), and a volume's next snapshot reads only the extents that are
// no longer shared with it — the bytes that changed.
//
//	chunks/ab/abcdef...   1 byte format (0 raw, 1 zstd) + data
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

// Put stores the file at src as snapshot id. With a parent made by this
// store from the same lineage of volumes, chunks whose extents are still
// shared with the parent's clone are taken from the parent unread.
func (c *Chunks) Put(ctx context.Context, id, parent, src string) (st Stats, err error) {
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	defer unlock()
	if _, err := os.Stat(c.manifestPath(id)); err == nil {
		return st, fmt.Errorf("store snapshot %s: it exists", id)
	}
	f, err := os.Open(src)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, err
	}
	size := fi.Size()
	n := int((size + int64(c.chunkSize) - 1) / int64(c.chunkSize))
	m := &Manifest{Version: 1, ID: id, Parent: parent, Size: size, ChunkSize: c.chunkSize, Created: time.Now().UTC(), Chunks: make([]string, n)}

	// Which chunks to read: those with data, minus those still shared
	// with the parent's clone (reflink stores).
	todo := make([]bool, n)
	exts, err := sparse.DataExtents(f, size)
	if err != nil {
		return st, err
	}
	for _, e := range exts {
		for i := e.Off / int64(c.chunkSize); i*int64(c.chunkSize) < e.Off+e.Len && int(i) < n; i++ {
			todo[i] = true
		}
	}
	var pm *Manifest
	if parent != "" {
		if pm, _ = c.LoadManifest(parent); pm != nil && pm.ChunkSize != c.chunkSize {
			pm = nil
		}
	}
	reused := 0
	if pm != nil && c.reflink {
		shared, err := sharedChunks(f, size, c.chunkSize)
		if err == nil {
			for i := range todo {
				if shared[i] && i < len(pm.Chunks) {
					m.Chunks[i] = pm.Chunks[i]
					if todo[i] {
						reused++
					}
					todo[i] = false
				}
			}
		} else {
			c.log.Debug("no extent sharing information; reading every allocated chunk", "err", err)
		}
	}
	var added, data atomic.Int64
	var seen sync.Map // hashes this Put already stores: write each once
	bufs := sync.Pool{New: func() any { return make([]byte, c.chunkSize) }}
	bar := progress.Start(ctx, "storing snapshot "+id, chunkBytes(todo, size, c.chunkSize), progress.Bytes)
	defer bar.Done()
	err = parallel(ctx, todo, func(i int) error {
		buf := bufs.Get().([]byte)
		defer bufs.Put(buf)
		off := int64(i) * int64(c.chunkSize)
		defer bar.Add(min(int64(c.chunkSize), size-off))
		k, err := f.ReadAt(buf[:min(int64(c.chunkSize), size-off)], off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s at %d: %w", src, off, err)
		}
		if allZero(buf[:k]) {
			return nil
		}
		sum := sha256.Sum256(buf[:k])
		h := hex.EncodeToString(sum[:])
		m.Chunks[i] = h
		data.Add(int64(k))
		if _, dup := seen.LoadOrStore(h, true); dup {
			return nil
		}
		w, err := c.writeChunk(h, buf[:k])
		added.Add(w)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	// Chunks durable first (each was synced; now their names), the manifest last.
	if err := syncDirs(filepath.Join(c.dir, "chunks")); err != nil {
		return st, fmt.Errorf("store snapshot %s: sync: %w", id, err)
	}
	if c.beforeManifest != nil {
		if err := c.beforeManifest(); err != nil {
			return st, err
		}
	}
	if c.reflink {
		if err := Clone(src, c.cachePath(id)); err != nil {
			c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
		}
	}
	if err := c.writeManifest(m); err != nil {
		os.Remove(c.cachePath(id))
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	c.log.Debug("snapshot stored", "snapshot", id, "parent", parent, "chunks", n, "read", countTrue(todo), "reused_shared", reused, "added", added.Load())
	return Stats{Size: size, Data: data.Load(), Added: added.Load()}, nil
}

// chunkBytes is how many bytes the marked chunks of a size-byte volume hold.
func chunkBytes(todo []bool, size int64, chunk int) int64 {
	var n int64
	for i, t := range todo {
		if t {
			n += min(int64(chunk), size-int64(i)*int64(chunk))
		}
	}
	return n
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// writeChunk stores a chunk unless it is there; it returns the bytes written.
func (c *Chunks) writeChunk(h string, data []byte) (int64, error) {
	p := c.chunkPath(h)
	if _, err := os.Stat(p); err == nil {
		return 0, nil // deduplicated
	}
	payload := append([]byte{0}, data...)
	if c.compress && compressible(c.enc, data) {
		z := c.enc.EncodeAll(data, make([]byte, 1, len(data)/2+1))
		if len(z) < len(data)*9/10 {
			z[0] = 1
			payload = z
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "chunk-*")
	if err != nil {
		return 0, err
	}
	if _, err := tmp.Write(payload); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return 0, err
	}
	// Durable before any manifest names it. Syncing each new chunk (in
	// parallel, as the workers write them) flushes only the store's new
	// data, not the volume the bake just wrote, which a syncfs would.
	if err := unix.Fdatasync(int(tmp.Fd())); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	return int64(len(payload)), nil
}

func (c *Chunks) writeManifest(m *Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "manifest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.manifestPath(m.ID)); err != nil {
		return err
	}
	d, err := os.Open(filepath.Join(c.dir, "snapshots"))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
	case 0:
	case 1:
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
	err = parallel(ctx, want, func(i int) error {
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

// GCStats says what gc removed.
type GCStats struct {
	Chunks     int   `json:"chunks"`
	Bytes      int64 `json:"bytes"`
	Temporary  int   `json:"temporary"`
	Clones     int   `json:"clones"`
	LiveChunks int   `json:"live_chunks"`
}

// GC removes every chunk no manifest names, leftover temporary files and
// clones without a manifest (with dryRun it only counts them). It waits
// for running snapshots to finish.
func (c *Chunks) GC(ctx context.Context, dryRun bool) (GCStats, error) {
	remove := os.Remove
	if dryRun {
		remove = func(string) error { return nil }
	}
	var st GCStats
	l, err := flock.Exclusive(ctx, c.gcLock())
	if err != nil {
		return st, err
	}
	defer l.Unlock()
	live := map[string]bool{}
	ids, err := c.Snapshots()
	if err != nil {
		return st, err
	}
	for _, id := range ids {
		m, err := c.LoadManifest(id)
		if err != nil {
			return st, fmt.Errorf("gc: %w (fix or remove it before collecting)", err)
		}
		for _, h := range m.Chunks {
			if h != "" {
				live[h] = true
			}
		}
	}
	st.LiveChunks = len(live)
	err = filepath.WalkDir(filepath.Join(c.dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if live[d.Name()] {
			return nil
		}
		if info, err := d.Info(); err == nil {
			st.Bytes += info.Size()
		}
		st.Chunks++
		return remove(p)
	})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	tmps, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, t := range tmps {
		if dryRun || os.RemoveAll(filepath.Join(c.dir, "tmp", t.Name())) == nil {
			st.Temporary++
		}
	}
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	clones, _ := os.ReadDir(filepath.Join(c.dir, "cache"))
	for _, cl := range clones {
		if !have[strings.TrimSuffix(cl.Name(), ".img")] && remove(filepath.Join(c.dir, "cache", cl.Name())) == nil {
			st.Clones++
		}
	}
	return st, nil
}

// FsckReport lists what is wrong in a store.
type FsckReport struct {
	Chunks int `json:"chunks_checked"`
	// Bad maps a corrupt or missing chunk to why.
	Bad map[string]string `json:"bad_chunks"`
	// Broken maps a snapshot to the bad chunks it needs.
	Broken map[string][]string `json:"broken_snapshots"`
}

// Fsck verifies every chunk against its hash and every manifest against
// the chunks, and names the snapshots a bad chunk breaks.
func (c *Chunks) Fsck(ctx context.Context) (*FsckReport, error) {
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &FsckReport{Bad: map[string]string{}, Broken: map[string][]string{}}
	err = filepath.WalkDir(filepath.Join(c.dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Chunks++
		if _, err := c.readChunk(d.Name()); err != nil {
			r.Bad[d.Name()] = err.Error()
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	ids, err := c.Snapshots()
	if err != nil {
		return r, err
	}
	for _, id := range ids {
		m, err := c.LoadManifest(id)
		if err != nil {
			r.Broken[id] = []string{err.Error()}
			continue
		}
		seen := map[string]bool{}
		for _, h := range m.Chunks {
			if h == "" || seen[h] {
				continue
			}
			seen[h] = true
			if _, bad := r.Bad[h]; bad {
				r.Broken[id] = append(r.Broken[id], h)
			} else if _, err := os.Stat(c.chunkPath(h)); err != nil {
				r.Bad[h] = "missing"
				r.Broken[id] = append(r.Broken[id], h)
			}
		}
	}
	return r, nil
}

// parallel runs fn for every index marked in todo on all cores and returns
// the first error; after an error or cancellation no new index starts.
func parallel(ctx context.Context, todo []bool, fn func(i int) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	idx := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i, t := range todo {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		if t {
			idx <- i
		}
	}
	close(idx)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// compressible tries a 16 KiB sample first, so incompressible chunks
// (packages, random data) cost a sixteenth of a full attempt.
func compressible(enc *zstd.Encoder, data []byte) bool {
	const sample = 16 << 10
	if len(data) <= 2*sample {
		return true
	}
	mid := len(data)/2 - sample/2
	z := enc.EncodeAll(data[mid:mid+sample], nil)
	return len(z) < sample*9/10
}

func allZero(b []byte) bool {
	// Compare in words: a clean chunk is mostly zero, so this is hot.
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	return bytes.Count(b, []byte{0}) == len(b)
}

// syncDirs fsyncs dir and its subdirectories (the 256 chunk fan-out
// directories), making new chunk names durable.
func syncDirs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range append([]fs.DirEntry{nil}, ents...) {
		p := dir
		if e != nil {
			if !e.IsDir() {
				continue
			}
			p = filepath.Join(dir, e.Name())
		}
		d, err := os.Open(p)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
