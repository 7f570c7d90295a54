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
