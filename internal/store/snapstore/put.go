package snapstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/sparse"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// putJob is one Put's state, shared by its workers.
type putJob struct {
	c    *Chunks
	src  *os.File
	size int64
	m    *Manifest
	// clone: raw chunks may be clones of src's blocks (src is on the
	// store's reflink filesystem); off after the first failure.
	clone       atomic.Bool
	mu          sync.Mutex
	pending     []pendingChunk // written, to be synced and named
	added, data atomic.Int64
	seen        sync.Map // hashes this Put already stores: write each once
	dirs        sync.Map // chunk fan-out directories given new names
	bufs        sync.Pool
}

// Put stores the file at src as snapshot id. With a parent made by this
// store from the same lineage of volumes, chunks whose blocks are provably
// the parent's clone's at the same offsets are taken from the parent
// unread. src must not be written while Put runs (a volume is detached).
func (c *Chunks) Put(ctx context.Context, id, parent, src string) (st Stats, err error) {
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	defer unlock()
	if _, err := os.Stat(c.manifestPath(id)); err == nil {
		return st, fmt.Errorf("store snapshot %s: it exists", id)
	}
	t0 := time.Now()
	f, staged, err := c.openSource(ctx, id, src)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	defer f.Close()
	if staged != "" {
		defer os.Remove(staged) // unless named the snapshot's clone below
	}
	tStage := time.Since(t0)
	fi, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	size := fi.Size()
	n := int((size + int64(c.chunkSize) - 1) / int64(c.chunkSize))
	j := &putJob{c: c, src: f, size: size,
		m:    &Manifest{Version: 1, ID: id, Parent: parent, Size: size, ChunkSize: c.chunkSize, Created: time.Now().UTC(), Chunks: make([]string, n)},
		bufs: sync.Pool{New: func() any { return make([]byte, c.chunkSize) }}}
	local := c.reflink && sameFS(f, c.dir)
	j.clone.Store(local)
	todo, reused, err := c.toRead(ctx, f, j.m, local)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	tExtents := time.Since(t0)
	defer j.removePending()
	bar := progress.Start(ctx, "storing snapshot "+id, chunkBytes(todo, size, c.chunkSize), progress.Bytes)
	defer bar.Done()
	err = parallel(ctx, todo, putWorkers(), func(i int) error {
		defer bar.Add(min(int64(c.chunkSize), size-int64(i)*int64(c.chunkSize)))
		return j.chunk(i)
	})
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	tChunks := time.Since(t0)
	// Chunks durable and named first, the manifest last.
	if err := j.commit(ctx); err != nil {
		return st, fmt.Errorf("store snapshot %s: sync: %w", id, err)
	}
	crashpoint.Hit("after-chunks")
	if c.beforeManifest != nil {
		if err := c.beforeManifest(); err != nil {
			return st, err
		}
	}
	tSync := time.Since(t0)
	b, err := json.Marshal(j.m)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	if local {
		c.keepClone(f, staged, id, hashOf(b))
	}
	tClone := time.Since(t0)
	if err := c.writeManifest(id, b); err != nil {
		os.Remove(c.cachePath(id))
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	crashpoint.Hit("after-manifest")
	c.log.Debug("snapshot stored", "snapshot", id, "parent", parent, "chunks", n, "read", countTrue(todo), "reused_shared", reused, "added", j.added.Load(),
		"cloned_chunks", j.clone.Load(), "staged_at", tStage, "extents_at", tExtents, "chunks_at", tChunks, "synced_at", tSync, "cached_at", tClone, "took", time.Since(t0))
	return Stats{Size: size, Data: j.data.Load(), Added: j.added.Load()}, nil
}

// toRead says which chunks of f to read: those with data, minus those
// that are provably the parent's (sameAsParent), which it takes from the
// parent's manifest into m. It returns how many it took so.
func (c *Chunks) toRead(ctx context.Context, f *os.File, m *Manifest, local bool) ([]bool, int, error) {
	n := len(m.Chunks)
	todo := make([]bool, n)
	exts, err := sparse.DataExtents(f, m.Size)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range exts {
		for i := e.Off / int64(c.chunkSize); i*int64(c.chunkSize) < e.Off+e.Len && int(i) < n; i++ {
			todo[i] = true
		}
	}
	if m.Parent == "" || !local {
		return todo, 0, nil
	}
	pm, same := c.sameAsParent(f, m)
	have := c.present(ctx, pm, same)
	reused := 0
	for i := range todo {
		if !same[i] || i >= len(pm.Chunks) {
			continue
		}
		if h := pm.Chunks[i]; h != "" && !have[h] {
			continue // missing or quarantined: read, and store it again
		}
		m.Chunks[i] = pm.Chunks[i]
		if todo[i] {
			reused++
		}
		todo[i] = false
	}
	return todo, reused, nil
}

// present says which of the parent's chunks that same marks are in the
// store. They are thousands on a base of a few GiB, each a stat (of an
// inode that may have left the cache), so they are checked on the Put's
// workers at once, each relative to the chunks directory.
func (c *Chunks) present(ctx context.Context, pm *Manifest, same []bool) map[string]bool {
	var hashes []string
	seen := map[string]bool{}
	for i, s := range same {
		if s && i < len(pm.Chunks) && pm.Chunks[i] != "" && !seen[pm.Chunks[i]] {
			seen[pm.Chunks[i]] = true
			hashes = append(hashes, pm.Chunks[i])
		}
	}
	have := make([]bool, len(hashes))
	if dir, err := os.Open(filepath.Join(c.dir, "chunks")); err == nil {
		all := make([]bool, len(hashes))
		for i := range all {
			all[i] = true
		}
		parallel(ctx, all, putWorkers(), func(i int) error {
			var st unix.Stat_t
			have[i] = unix.Fstatat(int(dir.Fd()), hashes[i][:2]+"/"+hashes[i], &st, unix.AT_SYMLINK_NOFOLLOW) == nil
			return nil
		})
		dir.Close()
	}
	out := make(map[string]bool, len(hashes))
	for i, h := range hashes {
		out[h] = have[i]
	}
	return out
}

// sameAsParent reports, per chunk of f (on the store's filesystem), whether
// its blocks are provably those of the parent's verified clone at the same
// offsets (sameBlocks), so the same bytes as the parent's chunk there. It
// returns the parent's manifest; where it cannot tell, the answer is no.
func (c *Chunks) sameAsParent(f *os.File, m *Manifest) (*Manifest, []bool) {
	none := make([]bool, len(m.Chunks))
	pm, sum, err := c.loadManifest(m.Parent)
	if err != nil || pm.ChunkSize != c.chunkSize {
		return pm, none
	}
	pf := c.verifiedClone(m.Parent, sum)
	if pf == nil {
		c.log.Debug("no verified clone of the parent; reading every allocated chunk", "parent", m.Parent)
		return pm, none
	}
	defer pf.Close()
	a, err := fileExtents(f, m.Size)
	if err == nil {
		var b []extent
		if b, err = fileExtents(pf, pm.Size); err == nil {
			return pm, sameBlocks(a, b, m.Size, pm.Size, c.chunkSize)
		}
	}
	c.log.Debug("no extent information; reading every allocated chunk", "err", err)
	return pm, none
}

// chunk reads, hashes and stores chunk i of the source.
func (j *putJob) chunk(i int) error {
	buf := j.bufs.Get().([]byte)
	defer j.bufs.Put(buf)
	off := int64(i) * int64(j.c.chunkSize)
	k, err := j.src.ReadAt(buf[:min(int64(j.c.chunkSize), j.size-off)], off)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read %s at %d: %w", j.src.Name(), off, err)
	}
	data := buf[:k]
	if allZero(data) {
		return nil
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	j.m.Chunks[i] = h
	j.data.Add(int64(k))
	if _, dup := j.seen.LoadOrStore(h, true); dup {
		return nil
	}
	w, err := j.write(h, data, off)
	j.added.Add(w)
	return err
}

// pendingChunk is a chunk written to a temporary file, to be synced and
// named.
type pendingChunk struct{ tmp, path string }

// write stores a chunk unless a good one is there, a clone of the source's range
// when it can be, in a temporary file it starts writing back and leaves
// for commit; it returns the bytes written (0 when the chunk was there).
func (j *putJob) write(h string, data []byte, off int64) (int64, error) {
	c := j.c
	p := c.chunkPath(h)
	if _, err := os.Stat(p); err == nil {
		// Deduplicated, if the chunk there is good: a bad one is
		// quarantined and stored again, so storing the data heals it.
		if _, err := c.readChunk(h); err == nil {
			return 0, nil
		}
		if _, err := c.quarantine(h); err != nil {
			return 0, err
		}
	}
	var z []byte
	if c.compress && compressible(c.enc, data) {
		z = c.enc.EncodeAll(data, make([]byte, 1, len(data)/2+1))
		if len(z) >= len(data)*9/10 {
			z = nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "chunk-*")
	if err != nil {
		return 0, err
	}
	var size int64
	switch {
	case z != nil:
		z[0] = formatZstd
		size, err = writeAll(tmp, z, 0)
	case c.reflink:
		size, err = j.writeAligned(tmp, data, off)
	default:
		size, err = writeAll(tmp, append([]byte{formatRaw}, data...), 0)
	}
	if err == nil { // start the write-back now; commit waits for it
		err = unix.SyncFileRange(int(tmp.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, err
	}
	j.mu.Lock()
	j.pending = append(j.pending, pendingChunk{tmp.Name(), p})
	j.mu.Unlock()
	return size, nil
}

// commit makes the new chunks durable and names them: each is synced
// (only the store's new chunks: not the volume, nor other bakes' data, as
// a syncfs would), all at once, so their log forces and flushes are
// shared, where syncing each as it was written cost a flush per chunk.
func (j *putJob) commit(ctx context.Context) error {
	todo := make([]bool, len(j.pending))
	for i := range todo {
		todo[i] = true
	}
	err := parallel(ctx, todo, commitWorkers, func(i int) error {
		pc := j.pending[i]
		f, err := os.Open(pc.tmp)
		if err != nil {
			return err
		}
		err = unix.Fdatasync(int(f.Fd()))
		f.Close()
		if err == nil {
			err = os.MkdirAll(filepath.Dir(pc.path), 0o700)
		}
		if err == nil {
			err = os.Rename(pc.tmp, pc.path)
		}
		if err != nil {
			return err
		}
		j.dirs.Store(filepath.Dir(pc.path), true)
		return nil
	})
	if err != nil {
		j.removePending()
		return err
	}
	j.pending = nil
	return j.syncDirs()
}

// removePending removes the chunks' temporary files (after a failure).
func (j *putJob) removePending() {
	for _, pc := range j.pending {
		os.Remove(pc.tmp)
	}
	j.pending = nil
}

// writeAligned writes a formatRawAligned chunk: a header block, then the
// data, cloned from the source's range when the source is on the store's
// filesystem and the range is whole blocks (no data is copied), else
// written.
func (j *putJob) writeAligned(tmp *os.File, data []byte, off int64) (int64, error) {
	hdr := make([]byte, rawOffset)
	hdr[0] = formatRawAligned
	if _, err := tmp.WriteAt(hdr, 0); err != nil {
		return 0, err
	}
	if j.clone.Load() && len(data)%rawOffset == 0 {
		err := unix.IoctlFileCloneRange(int(tmp.Fd()), &unix.FileCloneRange{
			Src_fd: int64(j.src.Fd()), Src_offset: uint64(off), Src_length: uint64(len(data)), Dest_offset: rawOffset})
		if err == nil {
			return rawOffset + int64(len(data)), nil
		}
		if j.clone.Swap(false) {
			j.c.log.Debug("chunks are copies, not clones", "err", err)
		}
	}
	return writeAll(tmp, data, rawOffset)
}

// syncDirs fsyncs the chunk directories that got new names, and their
// parent, making the names durable.
func (j *putJob) syncDirs() error {
	dirs := []string{filepath.Join(j.c.dir, "chunks")}
	j.dirs.Range(func(k, _ any) bool {
		dirs = append(dirs, k.(string))
		return true
	})
	for _, p := range dirs {
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
