package plugin

import "context"

// Cloud is a provider's API for images, snapshots, volumes and tags, cut
// into five roles: HostInfo, ImageStore (and its read side ImageFinder),
// SnapshotStore, VolumeStore and Tagger. A consumer takes the narrowest role, or
// composition of roles, it uses (the tagging finalizer an ImageStore and a
// SnapshotStore, channels an ImageFinder and a Tagger), so what it may do
// to a cloud can be read from its signature and a test fake implements
// only that. A cloud plugin implements them all.
//
// One contract holds for every method of every role, and the conformance
// suite (package cloud/cloudtest) checks both clouds against it:
//
//   - Not found. A method that names an image, snapshot or volume by id
//     that does not exist (never did, or was removed) returns an error
//     wrapping ErrNotFound, whether it reads the thing, changes it, makes
//     something from it or removes it. The exceptions are the two undo
//     operations, DetachVolume and DeleteTags, which return nil: what they
//     would undo is not there. FindImages matching nothing is not an
//     error either: it returns no images.
//   - Idempotency. Getters and FindImages change nothing. CreateTags,
//     DeleteTags and DetachVolume may be repeated and give the same
//     result. The creators are not idempotent (each call makes a new
//     snapshot, volume or image, and RegisterImage refuses a taken name
//     with ErrExists). The deleters remove the thing once: a second call
//     wraps ErrNotFound, so a caller that only needs the thing gone treats
//     ErrNotFound as done, and one that removes what a user named can tell
//     a typo from a removal.
//   - Cancellation. Every method returns when ctx is done, with an error
//     wrapping ctx.Err(). A creator cancelled half-way removes what it had
//     made, with a context that is not cancelled, so a cancelled call
//     leaves no half-made resource behind; an AttachVolume cancelled while
//     it waits may leave the volume attached, which DetachVolume undoes. A
//     read may be answered from a cache (Host) even when ctx is done.
//   - Waiting. Creators, AttachVolume and DetachVolume return once the
//     cloud reports the new state (available, completed, attached,
//     detached), or fail when the cloud's wait timeout passes.
//
// Errors other than ErrNotFound, ErrExists and ctx.Err() carry the
// cloud's own explanation (a permission, a throttle, a volume in use) and
// are not meant to be matched.
//
// Optional capabilities are named interfaces of their own, found with a
// type assertion: Distributor, NameChecker, TagLimiter, VolumeAdopter,
// FirmwareBooter, io.Closer (a cloud holding a database or locks) and
// blockdev.AttachedDeviceLister.
type Cloud interface {
	HostInfo
	ImageStore
	SnapshotStore
	VolumeStore
	Tagger
}

// HostInfo says where the bake runs.
type HostInfo interface {
	// Host describes this machine: its region, availability zone and
	// instance id. It changes nothing and may answer from a cache. It
	// fails (never with ErrNotFound) when the cloud cannot tell, as EC2
	// cannot off an instance; a failure is not cached.
	Host(ctx context.Context) (Host, error)
}

// ImageFinder reads images.
type ImageFinder interface {
	// Image finds one image by id (q.ID) or else by exact name (q.Name)
	// among the images the cloud looks at (EC2: the configured owners;
	// the newest when several share the name). It wraps ErrNotFound when
	// there is none, and fails otherwise when q names neither.
	Image(ctx context.Context, q ImageQuery) (*Image, error)
	// FindImages lists the images (EC2: this account's) carrying all the
	// given tags, every one of them (the cloud's pages are all read),
	// newest first. No match is an empty list and a nil error.
	FindImages(ctx context.Context, tags Tags) ([]*Image, error)
}

// ImageStore registers and removes images.
type ImageStore interface {
	ImageFinder
	// RegisterImage registers an image from snapshots, tagged with r.Tags
	// as it is created, and returns it once it is available. A taken name
	// wraps ErrExists (a cloud configured to number taken names registers
	// NAME-1, NAME-2, ... instead). A failed or cancelled call leaves no
	// image registered.
	RegisterImage(ctx context.Context, r ImageRequest) (*Image, error)
	// DeregisterImage removes an image; its snapshots stay. An image that
	// does not exist, or is deregistered already, wraps ErrNotFound.
	DeregisterImage(ctx context.Context, id string) error
}

// SnapshotStore makes and removes snapshots of volumes.
type SnapshotStore interface {
	// Snapshot describes a snapshot; it wraps ErrNotFound when there is none.
	Snapshot(ctx context.Context, id string) (*Snapshot, error)
	// CreateSnapshot snapshots a volume (detached, or its filesystem
	// unmounted) and returns the snapshot once it is completed, tagged
	// with r.Tags. A volume that does not exist wraps ErrNotFound. A
	// failed or cancelled call leaves no snapshot.
	CreateSnapshot(ctx context.Context, r SnapshotRequest) (*Snapshot, error)
	// DeleteSnapshot removes a snapshot. One that does not exist, or is
	// deleted already, wraps ErrNotFound. A snapshot an image uses is
	// refused (an error that does not wrap ErrNotFound) where the cloud
	// keeps track: the local cloud does, EC2 does, moto does not.
	DeleteSnapshot(ctx context.Context, id string) error
}

// VolumeStore makes, attaches and removes the cloud's block volumes. (The
// volume plugin, Volumes, is built on it.)
type VolumeStore interface {
	// Volume describes a volume; it wraps ErrNotFound when there is none.
	Volume(ctx context.Context, id string) (*Volume, error)
	// CreateVolume makes a volume from a snapshot (a missing one wraps
	// ErrNotFound), or an empty one, in this host's availability zone,
	// tagged with r.Tags, and returns it once it is available. The local
	// cloud makes the calling process its owner until it deletes it or
	// exits. A failed or cancelled call leaves no volume.
	CreateVolume(ctx context.Context, r VolumeRequest) (*Volume, error)
	// AttachVolume attaches a volume to this host at device (a Slot name,
	// may be "") and returns once the cloud reports it attached. A volume
	// that does not exist wraps ErrNotFound; one attached already is
	// refused (by the local cloud and EC2; moto attaches it again).
	AttachVolume(ctx context.Context, volumeID, device string) (Attachment, error)
	// DetachVolume detaches a volume from this host and returns once it
	// is available. A volume that is not attached, or does not exist, is
	// detached already: nil. It is the first step of every cleanup, so it
	// is safe to call after a failed or partial AttachVolume.
	DetachVolume(ctx context.Context, volumeID string) error
	// DeleteVolume removes a detached volume. One that does not exist, or
	// is deleted already, wraps ErrNotFound. An attached volume (and, on
	// the local cloud, one another live process owns) is refused with an
	// error that does not wrap ErrNotFound.
	DeleteVolume(ctx context.Context, volumeID string) error
}

// Tagger labels images, snapshots and volumes.
type Tagger interface {
	// CreateTags adds tags to an image, snapshot or volume, replacing the
	// values of keys it has. Repeating it changes nothing. A resource
	// that does not exist wraps ErrNotFound.
	CreateTags(ctx context.Context, id string, tags Tags) error
	// DeleteTags removes tags by key. Keys the resource does not carry
	// are ignored, and so is a resource that does not exist (nothing
	// carries the keys): both return nil.
	DeleteTags(ctx context.Context, id string, keys ...string) error
}

// VolumeAdopter is implemented by clouds where a volume has an owning
// process (the local cloud: a flock), so that a bake can work on a volume
// made by someone else (an external pool's, -V).
type VolumeAdopter interface {
	// AdoptVolume makes this process the owner of an existing volume and
	// describes it. A volume that does not exist wraps ErrNotFound; one a
	// live process owns is refused. Adopting a volume this process owns
	// already changes nothing.
	AdoptVolume(ctx context.Context, id string) (*Volume, error)
}

// FirmwareBooter is implemented by clouds whose instances start an image
// through firmware (legacy BIOS or UEFI) and the disk's own boot loader,
// never through its kernel directly (EC2): a bake there refuses to
// register a disk that cannot boot in the boot mode it registers (package
// bootdisk). The local cloud boots a loader-less image's kernel in its
// boot test, and does not implement it.
type FirmwareBooter interface {
	BootsThroughFirmware() bool
}

// BootsThroughFirmware reports whether c's instances boot the disk's own
// loader.
func BootsThroughFirmware(c Cloud) bool {
	f, ok := c.(FirmwareBooter)
	return ok && f.BootsThroughFirmware()
}
