package snapstore

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// FsckOptions say what Fsck does besides checking.
type FsckOptions struct {
	// Repair quarantines bad chunks and rebuilds them from the verified
	// clones and Sources (see Repair).
	Repair bool
	// Sources are more files that may hold snapshots' data (volumes made
	// from them), for Repair.
	Sources []Source
}

// Source is a file that may hold snapshot Snapshot's data at its offsets;
// only data that hashes to the chunk sought is taken from it.
type Source struct{ Path, Snapshot string }

// FsckReport lists what is wrong in a store. It is the plugin package's
// StoreCheck, so that the Checker capability can name it without the
// plugin interfaces depending on this store.
type FsckReport = plugin.StoreCheck

// Fsck verifies every chunk against its hash, every manifest against the
// chunks and every clone against its manifest; it names the snapshots a
// bad chunk breaks and drops the clones that differ. With o.Repair it
// then repairs what it can (see Repair).
func (c *Chunks) Fsck(ctx context.Context, o FsckOptions) (*FsckReport, error) {
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &FsckReport{Bad: map[string]string{}, Broken: map[string][]string{}, BadClones: map[string]string{},
		Quarantined: []string{}, Repaired: map[string]string{}}
	if err := c.checkChunks(ctx, r); err != nil {
		return r, err
	}
	ids, err := c.Snapshots()
	if err != nil {
		return r, err
	}
	var clones []Source
	for _, id := range ids {
		m, sum, err := c.loadManifest(id)
		if err != nil {
			r.Broken[id] = []string{err.Error()}
			continue
		}
		c.checkManifest(r, id, m)
		if ok, err := c.checkClone(ctx, id, m, sum, r); err != nil {
			return r, err
		} else if ok {
			clones = append(clones, Source{c.cachePath(id), id})
		}
	}
	if o.Repair {
		r.Repair = true
		return r, c.repair(ctx, r, append(clones, o.Sources...))
	}
	return r, nil
}

// checkChunks verifies every chunk file.
func (c *Chunks) checkChunks(ctx context.Context, r *FsckReport) error {
	return filepath.WalkDir(filepath.Join(c.dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
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
}

// checkManifest names the bad or missing chunks snapshot id needs.
func (c *Chunks) checkManifest(r *FsckReport, id string, m *Manifest) {
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

// checkClone verifies snapshot id's clone, if it has one, chunk by chunk
// against the manifest, and drops it if it differs. A good clone without
// a record of this manifest (made before clones had one) gets it, so it
// is used again. It reports whether the clone is good.
func (c *Chunks) checkClone(ctx context.Context, id string, m *Manifest, sum string, r *FsckReport) (bool, error) {
	f := c.verifiedClone(id, sum)
	recorded := f != nil
	if !recorded {
		var err error
		if f, err = os.Open(c.cachePath(id)); err != nil {
			return false, nil // none
		}
	}
	defer f.Close()
	r.Clones++
	why, err := c.cloneDiffers(ctx, f, m)
	if err != nil {
		return false, err
	}
	if why == "" {
		if !recorded {
			if err := unix.Fsetxattr(int(f.Fd()), cloneRecord, []byte(sum), 0); err != nil {
				return false, fmt.Errorf("record the clone of snapshot %s: %w", id, err)
			}
			c.log.Info("clone verified and recorded", "snapshot", id)
		}
		return true, nil
	}
	r.BadClones[id] = why
	if err := os.Remove(c.cachePath(id)); err != nil {
		return false, fmt.Errorf("drop the bad clone of snapshot %s: %w", id, err)
	}
	return false, nil
}

// cloneDiffers compares a clone with its manifest: "" if it holds exactly
// the manifest's data, else where it differs first.
func (c *Chunks) cloneDiffers(ctx context.Context, f *os.File, m *Manifest) (string, error) {
	if st, err := f.Stat(); err != nil {
		return "", err
	} else if st.Size() != m.Size {
		return fmt.Sprintf("size %d, the snapshot's is %d", st.Size(), m.Size), nil
	}
	exts, err := sparse.DataExtents(f, m.Size)
	if err != nil {
		return "", err
	}
	bad := make([]bool, len(m.Chunks))
	data := make([]bool, len(m.Chunks)) // holes need no reading
	for _, e := range exts {
		for i := e.Off / int64(m.ChunkSize); i*int64(m.ChunkSize) < e.Off+e.Len && int(i) < len(data); i++ {
			data[i] = true
		}
	}
	for i, h := range m.Chunks {
		bad[i] = !data[i] && h != ""
	}
	err = parallel(ctx, data, runtime.GOMAXPROCS(0), func(i int) error {
		h, err := c.hashAt(f, m, i)
		bad[i] = err == nil && h != m.Chunks[i]
		return err
	})
	if err != nil {
		return "", err
	}
	for i, b := range bad {
		if b {
			return fmt.Sprintf("chunk %d (at byte %d) differs from the snapshot's", i, int64(i)*int64(m.ChunkSize)), nil
		}
	}
	return "", nil
}

// hashAt hashes chunk i of f laid out as m: "" for zeros.
func (c *Chunks) hashAt(f *os.File, m *Manifest, i int) (string, error) {
	off := int64(i) * int64(m.ChunkSize)
	buf := make([]byte, min(int64(m.ChunkSize), m.Size-off))
	if _, err := f.ReadAt(buf, off); err != nil {
		return "", fmt.Errorf("read %s at %d: %w", f.Name(), off, err)
	}
	if allZero(buf) {
		return "", nil
	}
	return hashOf(buf), nil
}
