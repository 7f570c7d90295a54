package snapstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/progress"
	"github.com/aminator-go/aminator/internal/sparse"
)

// Chunk formats: the first byte of a chunk file.
const (
	formatRaw  = 0 // the data follows
	formatZstd = 1 // zstd-compressed data follows
	// formatRawAligned: the data starts at rawOffset, block-aligned, so on
	// a reflink filesystem it can share blocks with a volume (a clone of
	// the volume's range, not a copy). Reflink stores write raw chunks so.
	formatRawAligned = 2
	rawOffset        = 4096
)

// putWorkers is how many chunks a Put handles at once: more than the
// cores, since a worker mostly waits for its chunk file to be synced.
func putWorkers() int { return max(8, runtime.GOMAXPROCS(0)) }

// commitWorkers sync chunk files at once, so they share log forces.
const commitWorkers = 32

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
	todo, reused, err := c.plan(f, j.m, local)
	if err != nil {
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
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
	if c.beforeManifest != nil {
		if err := c.beforeManifest(); err != nil {
			return st, err
		}
	}
	tSync := time.Since(t0)
	if local {
		c.keepClone(f, staged, id)
	}
	tClone := time.Since(t0)
	if err := c.writeManifest(j.m); err != nil {
		os.Remove(c.cachePath(id))
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	c.log.Debug("snapshot stored", "snapshot", id, "parent", parent, "chunks", n, "read", countTrue(todo), "reused_shared", reused, "added", j.added.Load(),
		"cloned_chunks", j.clone.Load(), "staged_at", tStage, "chunks_at", tChunks, "synced_at", tSync, "cached_at", tClone, "took", time.Since(t0))
	return Stats{Size: size, Data: j.data.Load(), Added: j.added.Load()}, nil
}

// openSource opens the file to store. On a reflink store, a file on
// another filesystem (an imported image) is first copied into the store's
// filesystem (staged: its data written once, in long extents) and that
// copy is stored instead: its raw chunks are clones of it, and it becomes
// the snapshot's clone, so the first volume made from it is a clone too.
// If the copy fails, the file itself is stored (then with no clone).
func (c *Chunks) openSource(ctx context.Context, id, src string) (f *os.File, staged string, err error) {
	if f, err = os.Open(src); err != nil || !c.reflink || sameFS(f, c.dir) {
		return f, "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "cache"), "."+id+".img.tmp-*")
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			_, err = sparse.Copy(ctx, tmp, f, st.Size())
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			var copied *os.File
			if copied, err = os.Open(tmp.Name()); err == nil {
				f.Close()
				return copied, tmp.Name(), nil
			}
		}
		os.Remove(tmp.Name())
	}
	c.log.Debug("stored from its own filesystem: no clone of the snapshot for fast volumes", "err", err)
	return f, "", nil
}

// keepClone keeps the volume f, on the store's filesystem, as the
// snapshot's clone, from which new volumes are cloned: the staged copy of
// a file from elsewhere (synced, then named), or a clone of the volume.
func (c *Chunks) keepClone(f *os.File, staged, id string) {
	var err error
	if staged != "" {
		if err = unix.Fdatasync(int(f.Fd())); err == nil {
			err = os.Rename(staged, c.cachePath(id))
		}
	} else {
		err = Clone(f.Name(), c.cachePath(id))
	}
	if err != nil {
		c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
	}
}

// plan says which chunks of f to read: those with data, minus those whose
// extents are still shared with the parent's clone (when f is on the
// store's reflink filesystem: local), which it takes from the parent's
// manifest into m. It returns how many it took so.
func (c *Chunks) plan(f *os.File, m *Manifest, local bool) ([]bool, int, error) {
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
	pm, _ := c.LoadManifest(m.Parent)
	if pm == nil || pm.ChunkSize != c.chunkSize {
		return todo, 0, nil
	}
	shared, err := sharedChunks(f, m.Size, c.chunkSize)
	if err != nil {
		c.log.Debug("no extent sharing information; reading every allocated chunk", "err", err)
		return todo, 0, nil
	}
	reused := 0
	for i := range todo {
		if shared[i] && i < len(pm.Chunks) {
			m.Chunks[i] = pm.Chunks[i]
			if todo[i] {
				reused++
			}
			todo[i] = false
		}
	}
	return todo, reused, nil
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

// write stores a chunk unless it is there, a clone of the source's range
// when it can be, in a temporary file it starts writing back and leaves
// for commit; it returns the bytes written (0 when the chunk was there).
func (j *putJob) write(h string, data []byte, off int64) (int64, error) {
	c := j.c
	p := c.chunkPath(h)
	if _, err := os.Stat(p); err == nil {
		return 0, nil // deduplicated
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

func writeAll(f *os.File, b []byte, off int64) (int64, error) {
	n, err := f.WriteAt(b, off)
	return off + int64(n), err
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

// sameFS reports whether f is on the filesystem of dir.
func sameFS(f *os.File, dir string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev
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

// parallel runs fn for every index marked in todo on workers goroutines
// and returns the first error; after an error or cancellation no new
// index starts.
func parallel(ctx context.Context, todo []bool, workers int, fn func(i int) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	idx := make(chan int)
	for w := 0; w < workers; w++ {
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
