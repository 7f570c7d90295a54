package snapstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// repair, under Fsck's lock, moves every bad chunk file to quarantine/
// (evidence is never deleted) and rebuilds every bad or missing chunk it
// can: from a source file holding data that hashes to it at a position
// where the source's snapshot's manifest names it. It then takes what it
// rebuilt out of r.Bad and r.Broken, so what is left stays broken.
func (c *Chunks) repair(ctx context.Context, r *FsckReport, sources []Source) error {
	for _, h := range slices.Sorted(maps.Keys(r.Bad)) {
		if moved, err := c.quarantine(h); err != nil {
			return fmt.Errorf("repair: %w", err)
		} else if moved {
			r.Quarantined = append(r.Quarantined, h)
		}
	}
	where, err := c.positions(r.Bad)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	for _, h := range slices.Sorted(maps.Keys(r.Bad)) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		from, err := c.rebuild(ctx, h, where[h], sources)
		if err != nil {
			return fmt.Errorf("repair chunk %s: %w", h, err)
		}
		if from != "" {
			r.Repaired[h] = from
			delete(r.Bad, h)
		}
	}
	for id, hs := range r.Broken {
		var left []string
		for _, h := range hs {
			if _, ok := r.Repaired[h]; !ok {
				left = append(left, h)
			}
		}
		if len(left) == 0 {
			delete(r.Broken, id)
		} else {
			r.Broken[id] = left
		}
	}
	return nil
}

// quarantine moves chunk h's file, if there is one, to quarantine/ (under
// a new name if a chunk of that hash is there already), so the chunk is
// missing: nothing reads it, and the next Put of the same data stores it
// again.
func (c *Chunks) quarantine(h string) (bool, error) {
	dir := filepath.Join(c.dir, "quarantine")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	dst := filepath.Join(dir, h)
	for n := 1; ; n++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = filepath.Join(dir, h+"."+strconv.Itoa(n))
	}
	err := os.Rename(c.chunkPath(h), dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("quarantine chunk %s: %w", h, err)
	}
	c.log.Warn("bad chunk quarantined", "chunk", h, "to", dst)
	return true, nil
}

// positions maps each chunk of want to the snapshots naming it and where.
func (c *Chunks) positions(want map[string]string) (map[string]map[string][]int, error) {
	ids, err := c.Snapshots()
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]int{}
	for _, id := range ids {
		m, err := c.LoadManifest(id)
		if err != nil {
			continue // reported by Fsck as broken
		}
		for i, h := range m.Chunks {
			if _, ok := want[h]; ok && h != "" {
				if out[h] == nil {
					out[h] = map[string][]int{}
				}
				out[h][id] = append(out[h][id], i)
			}
		}
	}
	return out, nil
}

// rebuild stores chunk h again from the first source holding it at one of
// the positions its snapshot's manifest names it (at), and returns that
// source ("" if none does).
func (c *Chunks) rebuild(ctx context.Context, h string, at map[string][]int, sources []Source) (string, error) {
	for _, s := range sources {
		for _, i := range at[s.Snapshot] {
			data, err := c.readSourceChunk(s, i)
			if err != nil || hashOf(data) != h {
				continue
			}
			j := &putJob{c: c}
			if _, err := j.write(h, data, 0); err != nil {
				return "", err
			}
			if err := j.commit(ctx); err != nil {
				return "", err
			}
			c.log.Info("bad chunk rebuilt", "chunk", h, "from", s.Path)
			return s.Path, nil
		}
	}
	return "", nil
}

// readSourceChunk reads chunk i of a source laid out as its snapshot.
func (c *Chunks) readSourceChunk(s Source, i int) ([]byte, error) {
	m, err := c.LoadManifest(s.Snapshot)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	off := int64(i) * int64(m.ChunkSize)
	buf := make([]byte, min(int64(m.ChunkSize), m.Size-off))
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	return buf, nil
}
