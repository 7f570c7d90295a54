package snapstore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
)

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
