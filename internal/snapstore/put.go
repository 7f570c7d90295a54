package snapstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sparse"
)

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
	t0 := time.Now()
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
	tScan := time.Since(t0)
	var added, data atomic.Int64
	var seen sync.Map // hashes this Put already stores: write each once
	bufs := sync.Pool{New: func() any { return make([]byte, c.chunkSize) }}
	err = parallel(ctx, todo, func(i int) error {
		buf := bufs.Get().([]byte)
		defer bufs.Put(buf)
		off := int64(i) * int64(c.chunkSize)
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
	tChunks := time.Since(t0)
	// Chunks durable first (each was synced; now their names), the manifest last.
	if err := syncDirs(filepath.Join(c.dir, "chunks")); err != nil {
		return st, fmt.Errorf("store snapshot %s: sync: %w", id, err)
	}
	if c.beforeManifest != nil {
		if err := c.beforeManifest(); err != nil {
			return st, err
		}
	}
	tSync := time.Since(t0)
	if c.reflink {
		if err := Clone(src, c.cachePath(id)); err != nil {
			c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
		}
	}
	tClone := time.Since(t0)
	if err := c.writeManifest(m); err != nil {
		os.Remove(c.cachePath(id))
		return st, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	c.log.Debug("snapshot stored", "snapshot", id, "parent", parent, "chunks", n, "read", countTrue(todo), "reused_shared", reused, "added", added.Load(),
		"scanned_at", tScan, "chunks_at", tChunks, "synced_at", tSync, "cloned_at", tClone, "took", time.Since(t0))
	return Stats{Size: size, Data: data.Load(), Added: added.Load()}, nil
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
