// Package snapstore keeps the data of the local cloud's snapshots behind
// the Store interface; Chunks is the content-addressed, deduplicating
// implementation.
//
// The files follow its concerns: chunks.go (the store, its layout and
// locks), format.go (the chunk file format), manifest.go (snapshots'
// manifests), put.go and restore.go (storing and reading a snapshot),
// digest.go (a snapshot's disk digest, from its manifest or its chunks),
// cache.go and reflink.go (the reflink clones that make volumes and
// snapshots fast), sched.go (the workers), gc.go (maintenance: a plan,
// then its execution), check.go (fsck: chunks, manifests, clones) and
// repair.go (fsck --repair: quarantine, rebuild).
//
// # Durability
//
// A snapshot is stored, and then registered, in this order; each step is
// on disk before the next begins, so a crash (or power loss) at any point
// leaves either the old state or unreferenced leftovers that gc removes,
// never a manifest naming a chunk that is not there, nor a registered
// snapshot without its manifest:
//
//  1. Chunks: each new chunk is written to a temporary file in tmp/
//     (write-back started at once, sync_file_range), then fdatasync'd,
//     then renamed to chunks/XX/HASH (putJob.commit).
//  2. Chunk directories: every chunks/XX that got a new name, and chunks/
//     itself, is fsync'd (putJob.syncDirs): the names are durable.
//  3. Clone (reflink stores): the volume is cloned to a temporary name in
//     cache/, fsync'd, its record (the manifest's hash, an xattr) set, then
//     renamed to cache/ID.img (cache.go); a clone whose record does not
//     match its manifest is never used.
//  4. Manifest: written to a temporary file in tmp/, fsync'd, renamed to
//     snapshots/ID.json, and snapshots/ is fsync'd (writeManifest).
//  5. Row: only then does the local cloud mark the snapshot's row
//     completed in its registry (local.Cloud.snapshotFile), and register an
//     image on it later. The registry is SQLite in WAL mode with
//     synchronous=FULL: a commit is in the synced log before it returns,
//     so an image id that was printed, or a bake the bakery recorded as
//     done, survives power loss.
//
// Crash points between the steps leave: temporary files (gc: temporary),
// chunks no manifest names (gc: chunk), a manifest whose row is pending
// or gone (gc: pending_snapshot, manifest). Deleting goes the other way:
// the row first, then the manifest and clone, then (gc) the chunks. A
// clone is a cache: a missing one, or one whose record does not match, is
// made again from the chunks. crashpoint.Hit names each point for the crash
// tests (test/e2e/isolated/crash_test.go).
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
