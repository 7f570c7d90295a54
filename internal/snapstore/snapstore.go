// Package snapstore keeps the data of the local cloud's snapshots behind
// the Store interface; Chunks is the content-addressed, deduplicating
// implementation.
//
// The files follow its concerns: chunks.go (the store, its layout and
// locks), format.go (the chunk file format), manifest.go (snapshots'
// manifests), put.go and restore.go (storing and reading a snapshot),
// cache.go and reflink.go (the reflink clones that make volumes and
// snapshots fast), sched.go (the workers), gc.go (maintenance: a plan,
// then its execution), check.go (fsck: chunks, manifests, clones) and
// repair.go (fsck --repair: quarantine, rebuild).
package snapstore

import "context"

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
