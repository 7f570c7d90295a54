// Package snapstore keeps the data of the local cloud's snapshots. Store is
// the seam: this package has a sparse-file store (one file per snapshot,
// holes kept, written atomically); a content-addressed, deduplicating store
// fits behind the same interface.
package snapstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/sparse"
)

// Stats describe a stored snapshot.
type Stats struct {
	// Size is the logical size of the volume.
	Size int64
	// Data is the bytes that were not holes.
	Data int64
	// Added is what the store grew by.
	Added int64
}

// Store holds snapshot data.
type Store interface {
	// Put stores the file at src as snapshot id. parent names the snapshot
	// src was made from ("" for none); incremental stores use it. Put is
	// atomic: on error nothing of id is visible.
	Put(ctx context.Context, id, parent, src string) (Stats, error)
	// Restore writes snapshot id into a new file dst.
	Restore(ctx context.Context, id, dst string) error
	// Size is the logical size of snapshot id.
	Size(id string) (int64, error)
	// Delete removes snapshot id; deleting a missing one is not an error.
	Delete(ctx context.Context, id string) error
}

// Sparse stores each snapshot as a sparse file in a directory.
type Sparse struct{ Dir string }

// NewSparse makes the store's directory.
func NewSparse(dir string) (*Sparse, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot store %s: %w", dir, err)
	}
	return &Sparse{Dir: dir}, nil
}

func (s *Sparse) path(id string) string { return filepath.Join(s.Dir, id+".img") }

// Put copies src, keeping holes.
func (s *Sparse) Put(ctx context.Context, id, parent, src string) (Stats, error) {
	n, err := sparse.CopyFile(ctx, s.path(id), src)
	if err != nil {
		return Stats{}, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	st, err := os.Stat(s.path(id))
	if err != nil {
		return Stats{}, fmt.Errorf("store snapshot %s: %w", id, err)
	}
	return Stats{Size: st.Size(), Data: n, Added: n}, nil
}

// Restore copies the snapshot to dst, keeping holes.
func (s *Sparse) Restore(ctx context.Context, id, dst string) error {
	if _, err := sparse.CopyFile(ctx, dst, s.path(id)); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	return nil
}

// Size is the snapshot file's length.
func (s *Sparse) Size(id string) (int64, error) {
	st, err := os.Stat(s.path(id))
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return st.Size(), nil
}

// Delete removes the snapshot's file.
func (s *Sparse) Delete(ctx context.Context, id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return nil
}
