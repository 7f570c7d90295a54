package snapstore

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aminator-go/aminator/internal/flock"
)

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
