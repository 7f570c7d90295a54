package snapstore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

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
