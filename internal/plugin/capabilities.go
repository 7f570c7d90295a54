package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// The operations beyond a bake are optional capabilities of a cloud, each
// a named interface found with a type assertion (Has finds one and says
// which cloud lacks it). The contract of Cloud (not found, idempotency,
// cancellation, waiting) holds for their methods too, and the conformance
// suite (package cloud/cloudtest) has a sub-suite for each that runs on
// every cloud implementing it:
//
//	capability   local  ec2  fake
//	Pool         yes    yes  yes
//	Lister       yes    yes  yes
//	Manifests    yes    no   yes
//	GCPlanner    yes    yes  yes
//	Importer     yes    no   no
//	DiskFiles    yes    no   no
//	Checker      yes    no   no
//	DiskDigests  yes    yes  no   (ec2: from the snapshot's disk_digest tag,
//	                               or read through the EBS direct APIs)
//	StoreSetup   yes    no   no   (a Registration's, before the cloud opens)
//
// EC2 keeps no package manifest (an image's tags would not hold one), and
// keeps snapshot data where only an instance can read it through a volume
// or the EBS direct APIs block by block: the commands that read an
// image's disk or its manifest run on the local cloud.

// ErrNoCapability is wrapped by the error of a command asking a cloud for
// a capability it lacks.
var ErrNoCapability = errors.New("capability not implemented")

// Has returns c as capability T, or an error naming the cloud and the
// capability (what, e.g. "a volume pool") that wraps ErrNoCapability.
func Has[T any](c Cloud, cloud, what string) (T, error) {
	if t, ok := c.(T); ok {
		return t, nil
	}
	var zero T
	return zero, fmt.Errorf("the %s cloud has no %s: %w (choose another cloud with --cloud or -e)", cloud, what, ErrNoCapability)
}

// Pool is implemented by clouds that keep, per base snapshot, a number of
// ready volumes made ahead of time, so that a bake takes one instead of
// making its own (CreateVolume of a pooled snapshot takes one when it can).
// The pool's targets are this host's: each host keeps its own pools.
//
//   - Not found. FillPool of a snapshot that does not exist wraps
//     ErrNotFound and sets no target. DrainPool of a snapshot that has no
//     pool deletes nothing and returns 0, nil.
//   - Idempotency. FillPool with the same target again makes nothing once
//     the target is met; DrainPool again deletes nothing. PoolStatus
//     changes nothing.
//   - Concurrency. A FillPool while another process on this host fills
//     the same pool returns 0 at once; a bake never waits for the pool.
//   - Cancellation. A volume being made when ctx is done is removed; the
//     target stays set.
type Pool interface {
	// FillPool sets the pool target of f.Snapshot (unless f.Target < 0: a
	// refill keeps the target it has) and makes volumes until that many
	// are ready; it returns how many it made.
	FillPool(ctx context.Context, f PoolFill) (made int, err error)
	// PoolStatus lists this host's pools, by snapshot id.
	PoolStatus(ctx context.Context) ([]PoolStatus, error)
	// DrainPool forgets the target of a snapshot ("" for every pool) and
	// deletes its ready volumes; it returns how many it deleted.
	DrainPool(ctx context.Context, snapshotID string) (int, error)
	// OnPoolTake makes fn be called (with the snapshot id) each time a bake
	// takes a pooled volume, so that the pool is refilled in the background.
	OnPoolTake(fn func(snapshotID string))
}

// PoolFill is what FillPool does.
type PoolFill struct {
	// Snapshot is the base image's root snapshot.
	Snapshot string
	// Base is the base image's id ("" on a refill): EC2 tags the pool's
	// volumes with it.
	Base string
	// Target is how many ready volumes to keep; < 0 keeps the current
	// target (a refill).
	Target int
	// Devices picks the device names of volumes kept attached (EC2's
	// pool_attach); nil when the cloud's pool keeps none attached.
	Devices DeviceAllocator
}

// DeviceAllocator reserves a device name to attach at (a BlockDevice).
type DeviceAllocator interface {
	Allocate(ctx context.Context, name string) (Slot, error)
}

// PoolStatus is one pool of this host.
type PoolStatus struct {
	SnapshotID string `json:"snapshot_id"`
	// Images are the base images whose root snapshot it is (those the
	// cloud knows of: the local cloud every image using it, EC2 the base
	// the pool was filled for).
	Images []string `json:"images"`
	Target int      `json:"target"`
	Ready  int      `json:"ready"`
	// Attached are the ready volumes kept attached to this host (EC2's
	// pool_attach); Creating those still being made.
	Attached int `json:"attached"`
	Creating int `json:"creating"`
}

// Lister is implemented by clouds that can list the snapshots and volumes
// aminator keeps in them (the local cloud all of its own; EC2 this
// account's in the region that aminator tagged). Both change nothing;
// nothing to list is an empty list and a nil error.
type Lister interface {
	// ListSnapshots lists snapshots, newest first.
	ListSnapshots(ctx context.Context) ([]*Snapshot, error)
	// ListVolumes lists volumes, newest first; a volume whose bake the
	// cloud can tell is gone is marked Orphaned.
	ListVolumes(ctx context.Context) ([]*Volume, error)
}

// Manifests is implemented by clouds that keep an image's package
// manifest: RegisterImage stores ImageRequest.Packages with the image,
// and DeregisterImage removes them with it.
type Manifests interface {
	// Manifest returns an image's packages, sorted by name and
	// architecture (an image registered without any: none, nil). An image
	// that does not exist wraps ErrNotFound.
	Manifest(ctx context.Context, imageID string) ([]Package, error)
}

// GCPlanner is implemented by clouds whose gc collects what killed bakes
// (and, on the local cloud, unused store data) left behind. Planning
// removes nothing; nothing of a job still running (its job lock held in
// the lock directory) is planned, and the plan re-checks each item as it
// executes it.
type GCPlanner interface {
	// PlanGarbage lists what gc would remove, and why. When part of the
	// plan could not be made it returns the rest with the reason; a nil
	// plan means nothing can be collected.
	PlanGarbage(ctx context.Context) (gcreport.Plan, error)
}

// ImportRequest is what Import registers.
type ImportRequest struct {
	Name, Description, Architecture, VirtualizationType string
	Tags                                                Tags
}

// Importer is implemented by clouds that register an image from a raw
// disk file on this host (the local cloud).
type Importer interface {
	// Import stores the raw disk file (a whole-device filesystem or a
	// partitioned disk) as a snapshot and registers an image of it. A
	// taken name wraps ErrExists; a failed or cancelled call leaves
	// neither the snapshot nor the image.
	Import(ctx context.Context, file string, r ImportRequest) (*Image, error)
}

// DiskFiles is implemented by clouds that keep snapshots' data on this
// host and can write a snapshot out as a raw disk file (the local cloud):
// what export, bundle and the boot test read an image's disk through.
type DiskFiles interface {
	// RestoreSnapshot writes a snapshot's data into the new file dst. A
	// snapshot that does not exist wraps ErrNotFound; a failed or
	// cancelled call removes dst.
	RestoreSnapshot(ctx context.Context, snapshotID, dst string) error
	// Scratch returns a directory for temporary disk files on the store's
	// filesystem (so restores there are reflink clones where it has them),
	// held as a running job's until release is called: gc leaves it and
	// the files in it alone meanwhile.
	Scratch(ctx context.Context) (dir string, release func(), err error)
	// Reflink reports whether volumes and restores are reflink clones.
	Reflink() bool
}

// DiskDigests is implemented by clouds that can give a snapshot's disk
// digest (package diskdigest: a SHA-256 over the SHA-256s of the disk's
// 512 KiB chunks), the digest provenance names an image's disk by: the
// local cloud from its chunk store's manifests.
//
//   - Not found. Either method of a snapshot that does not exist wraps
//     ErrNotFound.
//   - Both give the same lower-case hex digest for a sound snapshot: the
//     one diskdigest.OfFile gives of the snapshot's raw disk.
//   - ReadDiskDigest of a snapshot whose stored data changed fails; it
//     never gives a digest of data other than the snapshot's.
//   - Cancellation. ReadDiskDigest stops when ctx is done.
type DiskDigests interface {
	// DiskDigest is the snapshot's digest from what the cloud already
	// knows (no read of the disk where it can).
	DiskDigest(ctx context.Context, snapshotID string) (string, error)
	// ReadDiskDigest recomputes it by reading every byte, checking the
	// stored data on the way.
	ReadDiskDigest(ctx context.Context, snapshotID string) (string, error)
}

// DiskDigestTags is implemented by DiskDigests clouds that cannot give a
// snapshot's digest without reading it, unless its bake recorded the
// digest in a tag of the snapshot (EC2): a bake that attests then reads
// its volume's digest before the snapshot and tags the snapshot with the
// key and value DiskDigestTag gives, and DiskDigest reads that tag.
type DiskDigestTags interface {
	DiskDigestTag(digest string) (key, value string)
}

// StoreCheck lists what is wrong in a chunk store (the local cloud's,
// package snapstore).
type StoreCheck struct {
	Chunks int `json:"chunks_checked"`
	// Bad maps a corrupt or missing chunk to why.
	Bad map[string]string `json:"bad_chunks"`
	// Broken maps a snapshot to the bad chunks it needs.
	Broken map[string][]string `json:"broken_snapshots"`
	// Clones is how many clones were verified against their manifests
	// (a good one without a record of its manifest gets one).
	Clones int `json:"clones_checked"`
	// BadClones maps a snapshot whose clone differs from its manifest to
	// how; such a clone is dropped (volumes are then made from the chunks).
	BadClones map[string]string `json:"bad_clones"`
	// Repair says the report is of a repair: Quarantined are the bad
	// chunk files moved to quarantine/, Repaired maps a chunk rebuilt to
	// the file it was rebuilt from.
	Repair      bool              `json:"repair"`
	Quarantined []string          `json:"quarantined_chunks"`
	Repaired    map[string]string `json:"repaired_chunks"`
}

// FsckReport is what Check found: the store's check and what it means for
// the images.
type FsckReport struct {
	*StoreCheck
	// MissingData are completed snapshots the store has no data for.
	MissingData []string `json:"missing_data"`
	// BrokenImages maps an image to its broken snapshots.
	BrokenImages map[string][]string `json:"broken_images"`
}

// OK reports whether nothing is wrong (after a repair: nothing is left
// broken; the bad clones it found were dropped).
func (r *FsckReport) OK() bool {
	return len(r.Bad) == 0 && len(r.Broken) == 0 && len(r.MissingData) == 0 && (r.Repair || len(r.BadClones) == 0)
}

// Checker is implemented by clouds whose stored data can be verified on
// this host (the local cloud's chunk store).
type Checker interface {
	// Fsck verifies every stored chunk and clone and names the snapshots
	// and images a bad one breaks; with repair it quarantines bad data and
	// rebuilds what it can. A damaged store is a report that is not OK,
	// not an error.
	Fsck(ctx context.Context, repair bool) (*FsckReport, error)
}

// StoreSetup is implemented by a cloud plugin whose volumes and snapshots
// live in a store on this host that is set up and mounted before the
// cloud opens (the local cloud's store filesystem). It is named in the
// plugin's Registration, not found on an open cloud. Each method needs
// root and works in the calling process's mount namespace.
type StoreSetup interface {
	// PrepareStore readies the store in stateDir as mode (store_fs) says:
	// it mounts the store filesystem made before, or sets one up on a new
	// state directory. Repeating it changes nothing.
	PrepareStore(ctx context.Context, stateDir, mode string, log *slog.Logger) error
	// InitStore sets up the store as fstype says (none, xfs or btrfs), of
	// size bytes, in a state directory that has no store yet.
	InitStore(ctx context.Context, stateDir, fstype string, size int64, log *slog.Logger) error
	// UnmountStore unmounts the store filesystem (none mounted: nil).
	UnmountStore(ctx context.Context, stateDir string) error
}
