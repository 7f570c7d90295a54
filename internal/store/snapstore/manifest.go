package snapstore

import (
	"crypto/sha256"
	"encoding/hex"
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
	m, _, err := c.loadManifest(id)
	return m, err
}

// loadManifest reads a snapshot's manifest and the SHA-256 of its bytes
// (what its clone's record names).
func (c *Chunks) loadManifest(id string) (*Manifest, string, error) {
	b, err := os.ReadFile(c.manifestPath(id))
	if err != nil {
		return nil, "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("snapshot %s: bad manifest: %w", id, err)
	}
	return &m, hashOf(b), nil
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Size is the logical size of snapshot id.
func (c *Chunks) Size(id string) (int64, error) {
	m, err := c.LoadManifest(id)
	if err != nil {
		return 0, err
	}
	return m.Size, nil
}

// writeManifest writes the manifest's bytes b (durably) as snapshot id's.
func (c *Chunks) writeManifest(id string, b []byte) error {
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
	if err := os.Rename(tmp.Name(), c.manifestPath(id)); err != nil {
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
