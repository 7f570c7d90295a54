// Package plugin defines the six kinds of plugin a bake is assembled from
// (cloud, blockdevice, volume, distro, provisioner, finalizer), the values
// they exchange, and a compile-time registry in which each implementation
// registers itself by name, as Caddy modules do.
//
// An environment (see package config) names one plugin of each kind. The
// bake pipeline only talks to these interfaces, so an EC2 cloud, a RedHat
// distro, an S3-bundle finalizer or a bake service fit without changing it.
package plugin

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aminator-go/aminator/internal/fetch"
)

// Kind is one of the six plugin kinds.
type Kind string

// The plugin kinds, in the order an environment instantiates them.
const (
	KindCloud       Kind = "cloud"
	KindBlockDevice Kind = "blockdevice"
	KindVolume      Kind = "volume"
	KindDistro      Kind = "distro"
	KindProvisioner Kind = "provisioner"
	KindFinalizer   Kind = "finalizer"
)

// Kinds lists every kind in instantiation order.
var Kinds = []Kind{KindCloud, KindBlockDevice, KindVolume, KindDistro, KindProvisioner, KindFinalizer}

// ErrNotFound is wrapped by clouds when an image, snapshot or volume does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is wrapped by clouds when a name is already taken.
var ErrExists = errors.New("already exists")

// Tags are key/value labels on images, snapshots and volumes.
type Tags map[string]string

// BlockDeviceMapping is one entry of an image's block device mappings.
type BlockDeviceMapping struct {
	DeviceName          string `json:"device_name"`
	SnapshotID          string `json:"snapshot_id,omitempty"`
	VolumeSizeGiB       int64  `json:"volume_size_gib,omitempty"`
	VolumeType          string `json:"volume_type,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	VirtualName         string `json:"virtual_name,omitempty"`
}

// Image is a registered machine image.
type Image struct {
	ID                 string               `json:"id"`
	Name               string               `json:"name"`
	Description        string               `json:"description"`
	Architecture       string               `json:"architecture"`
	VirtualizationType string               `json:"virtualization_type"`
	RootDeviceName     string               `json:"root_device_name"`
	RootDeviceType     string               `json:"root_device_type"`
	BlockDevices       []BlockDeviceMapping `json:"block_device_mappings"`
	EnaSupport         bool                 `json:"ena_support,omitempty"`
	SriovNetSupport    bool                 `json:"sriov_net_support,omitempty"`
	// BootMode is legacy-bios, uefi or uefi-preferred ("" unspecified).
	BootMode string `json:"boot_mode,omitempty"`
	// KernelID and RamdiskID belong to paravirtual images.
	KernelID  string    `json:"kernel_id,omitempty"`
	RamdiskID string    `json:"ramdisk_id,omitempty"`
	OwnerID   string    `json:"owner_id,omitempty"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	Tags      Tags      `json:"tags"`
}

// Root returns the mapping of the image's root device, or nil.
func (i *Image) Root() *BlockDeviceMapping {
	for k := range i.BlockDevices {
		if i.BlockDevices[k].DeviceName == i.RootDeviceName {
			return &i.BlockDevices[k]
		}
	}
	return nil
}

// Distribution says where a registered image goes next.
type Distribution struct {
	// CopyTo are regions to copy the image to.
	CopyTo []string
	// KMSKeys maps a region to the KMS key its copy is encrypted with.
	KMSKeys map[string]string
	// ShareWith are account ids given launch permission (and volume
	// creation permission on the snapshots).
	ShareWith []string
	// OrgARNs and OUARNs are organisations and organisational units given
	// launch permission.
	OrgARNs, OUARNs []string
	// DeprecateAt, if set, deprecates the image (and its copies) then.
	DeprecateAt time.Time
	// Job is the bake distributing (its id): each copy carries it while it
	// is being made, so gc finds the copies of a bake killed meanwhile.
	Job string
}

// Empty reports whether there is nothing to do.
func (d Distribution) Empty() bool {
	return len(d.CopyTo) == 0 && len(d.ShareWith) == 0 && len(d.OrgARNs) == 0 && len(d.OUARNs) == 0 && d.DeprecateAt.IsZero()
}

// RegionImage is an image in one region.
type RegionImage struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
}

// Distributor is implemented by clouds that copy and share images.
type Distributor interface {
	Distribute(ctx context.Context, im *Image, d Distribution) ([]RegionImage, error)
}

// Snapshot is a point-in-time copy of a volume.
type Snapshot struct {
	ID          string    `json:"id"`
	VolumeID    string    `json:"volume_id,omitempty"`
	ParentID    string    `json:"parent_id,omitempty"`
	SizeBytes   int64     `json:"size_bytes"`
	Description string    `json:"description,omitempty"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	Tags        Tags      `json:"tags"`
}

// Volume is a block volume that can be attached to this host.
type Volume struct {
	ID         string `json:"id"`
	SnapshotID string `json:"snapshot_id,omitempty"`
	SizeBytes  int64  `json:"size_bytes"`
	State      string `json:"state"`
	Device     string `json:"device,omitempty"`
	// AttachedTo is the instance the volume is attached to ("" on the local cloud: this host).
	AttachedTo string    `json:"attached_to,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	Tags       Tags      `json:"tags"`
	// Orphaned is set by clouds that can tell the bake owning the volume is gone.
	Orphaned bool `json:"orphaned,omitempty"`
}

// Host describes the machine the bake runs on.
type Host struct {
	Region           string
	AvailabilityZone string
	InstanceID       string
}

// ImageQuery selects a base image by id or by name.
type ImageQuery struct {
	ID   string
	Name string
}

// VolumeRequest asks a cloud for a new volume made from a snapshot, or an
// empty one when SnapshotID is "".
type VolumeRequest struct {
	SnapshotID string
	SizeBytes  int64 // 0: the snapshot's size; required for an empty volume
	Type       string
	Tags       Tags
}

// Attachment is where a cloud attached a volume. Device is the name the
// cloud knows (for example /dev/sdf); LocalPath is the block device node on
// this host when the cloud knows it (the local cloud does), else "" and the
// blockdevice plugin finds it.
type Attachment struct {
	VolumeID  string
	Device    string
	LocalPath string
}

// SnapshotRequest asks for a snapshot of a detached or unmounted volume.
type SnapshotRequest struct {
	VolumeID    string
	Description string
	Tags        Tags
}

// ImageRequest asks a cloud to register an image.
type ImageRequest struct {
	Name               string
	Description        string
	Architecture       string
	VirtualizationType string
	RootDeviceName     string
	BlockDevices       []BlockDeviceMapping
	EnaSupport         bool
	SriovNetSupport    bool
	BootMode           string
	TPMSupport         bool
	IMDSv2Required     bool
	KernelID           string
	RamdiskID          string
	// ImageLocation is the S3 manifest of an instance-store image,
	// BUCKET/[PREFIX/]NAME.manifest.xml ("" for a volume-backed one).
	ImageLocation string
	Tags          Tags
	// Packages is the image's package manifest, kept where the cloud can.
	Packages []Package
}

// Package is one installed package of an image's manifest.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Slot is an attachment point reserved for one bake.
type Slot struct {
	// Name is the device name to attach at ("" lets the cloud choose).
	Name string
	// Release frees the reservation; it is safe to call more than once.
	Release func() error
}

// BlockDevice reserves attachment points and finds the local node of an
// attached volume.
type BlockDevice interface {
	// Allocate reserves a free attachment point, or the one named (which
	// must be free).
	Allocate(ctx context.Context, name string) (Slot, error)
	// Locate waits for the local block device of an attachment and returns its path.
	Locate(ctx context.Context, a Attachment) (string, error)
}

// Volumes creates, attaches, readies and removes the bake's volume.
type Volumes interface {
	// Create makes a volume from the base image's root snapshot, or an
	// empty one when base is nil.
	Create(ctx context.Context, base *Image, sizeBytes int64, tags Tags) (*Volume, error)
	// Attach attaches it to this host at device ("" picks a free one) and
	// returns the local device path.
	Attach(ctx context.Context, v *Volume, device string) (string, error)
	// Adopt takes an existing volume (an external pool's, -V): it is baked
	// on but never deleted. When it is attached to this host already, dev
	// is its local device ("" otherwise).
	Adopt(ctx context.Context, id string) (v *Volume, dev string, err error)
	// Grow makes the root partition and filesystem fill the volume where
	// that is done unmounted (fsck, partition, resize2fs).
	Grow(ctx context.Context, device string, partition int) error
	// GrowMounted finishes growing filesystems that grow only mounted (XFS).
	GrowMounted(ctx context.Context, mountPoint string) error
	Detach(ctx context.Context, v *Volume) error
	Delete(ctx context.Context, v *Volume) error
}

// MountOptions say how to mount the root filesystem.
type MountOptions struct {
	Device     string
	Partition  int // 0: whole device
	MountPoint string
	// ScriptNetwork gives every command in the chroot, package scripts
	// included, the bake's network (--script-network).
	ScriptNetwork bool
	// NoFlush mounts a root filesystem that can skip its cache flushes
	// without them (ext4: nobarrier): the volume is scratch (see
	// ScratchVolumer).
	NoFlush bool
}

// Distro mounts a root filesystem and prepares a chroot for provisioning.
type Distro interface {
	Enter(ctx context.Context, o MountOptions) (Chroot, error)
}

// Run describes one command to run inside a chroot.
type Run struct {
	Argv []string
	Env  map[string]string // added to the distro's clean environment
	// Interactive attaches the caller's terminal.
	Interactive bool
	// Network lets the command download from the image's package sources
	// through the bake's egress proxy (nothing else: never the host's
	// loopback or the metadata address); without it the command's sandbox
	// has only a loopback of its own. Only for commands that download and
	// run no package code (apt-get update, --download-only).
	Network bool
}

// Chroot is a mounted, prepared image root.
type Chroot interface {
	// Path is the mount point on the host.
	Path() string
	// Root gives file access confined to the image (symlinks cannot escape).
	Root() *os.Root
	// Run runs argv inside the chroot; the error carries its last output lines.
	Run(ctx context.Context, r Run) error
	// Output runs argv and returns its standard output.
	Output(ctx context.Context, r Run) ([]byte, error)
	// BindFile shows a host file read-only at rel inside the image without
	// copying it; the returned func removes it.
	BindFile(src, rel string) (func() error, error)
	// EndProcesses ends every process still running inside the chroot.
	EndProcesses(ctx context.Context) error
	// Close undoes the chroot and unmounts everything; safe to call twice.
	Close(ctx context.Context) error
	// Preserve keeps the mounts in place when the process exits (for
	// --preserve-on-error); Close then leaves them. The bake's pipeline
	// says how to remove them by hand.
	Preserve()
}

// PackageRef is the package a bake installs.
type PackageRef struct {
	// Raw is what the user typed.
	Raw string
	// Kind is "file", "url" or "repo".
	Kind string
	// Path is the local file (file, or url after download).
	Path string
	// URL for url refs.
	URL string
	// Name and Version for repo refs (Version may be "").
	Name    string
	Version string
	// Resolved says an Inspector's Resolve refreshed the package
	// manager's metadata and pinned Version.
	Resolved bool
	// SHA256 (hex) is what a file's or URL's bytes must hash to before
	// they are used ("": not checked).
	SHA256 string
	// Private says Path is the bake's own file (downloaded, or copied
	// while its SHA256 was checked), which its caller removes.
	Private bool
}

// PackageInfo is what a provisioner learned about the installed package.
type PackageInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Release string `json:"release"`
	Arch    string `json:"arch"`
	// FullVersion is the package manager's version string, epoch included.
	FullVersion string `json:"full_version"`
	// InstallTime is how long the package manager itself took to install.
	InstallTime time.Duration `json:"install_time_ns"`
	// SHA256 is the installed package file's (hex): the file given or
	// downloaded, or the one the package manager fetched when it keeps
	// it until the cache is cleaned (apt); "" when not known (dnf).
	SHA256 string `json:"sha256,omitempty"`
	// Installed, when the provisioner read it with the package (one
	// command), lists every package installed in the chroot right after
	// the install: the manifest, as long as nothing else runs in the
	// image before it is taken (nil: not read).
	Installed []Package `json:"-"`
}

// Provisioner installs a package inside a chroot with the distribution's package manager.
type Provisioner interface {
	// Parse validates what the user asked for and says what it is.
	Parse(raw string) (PackageRef, error)
	// Provision installs the package and reports its metadata.
	Provision(ctx context.Context, c Chroot, ref PackageRef) (*PackageInfo, error)
	// Manifest lists every package installed in the chroot.
	Manifest(ctx context.Context, c Chroot) ([]Package, error)
}

// SnapshotVolume asks a finalizer to snapshot the bake's volume, which is
// unmounted by then.
type SnapshotVolume struct {
	Volume *Volume
	// ImageName is the image the snapshot becomes; it describes the snapshot.
	ImageName string
	// Image is the image the snapshot becomes (an S3 bundle's manifest
	// names its architecture, kernel and ramdisk).
	Image ImageRequest
	// Device is the volume's block device on this host.
	Device string
	// Tags go on the snapshot: the image's and the bake's own (its id, so
	// that gc finds the snapshot of a bake killed before it registered).
	Tags Tags
}

// RegisterSnapshot asks a finalizer to register a snapshot as an image.
type RegisterSnapshot struct {
	Snapshot *Snapshot
	// Base is the image baked on, whose block device mappings the new
	// image keeps with its root replaced; nil for an image with no base
	// (a foundation).
	Base *Image
	// SizeBytes and VolumeType are the new image's root volume's.
	SizeBytes  int64
	VolumeType string
	// Image is the image to register; the finalizer fills in its root
	// device and block device mappings.
	Image ImageRequest
}

// Finalizer turns the provisioned volume into an image in two steps, a
// snapshot and a registration. The caller undoes each when a later step
// fails: it deletes the snapshot (Cloud.DeleteSnapshot) and deregisters
// the image (Cloud.DeregisterImage).
type Finalizer interface {
	// StoreType is "ebs" or "s3"; it ends default image names.
	StoreType() string
	// Snapshot snapshots the unmounted volume.
	Snapshot(ctx context.Context, r SnapshotVolume) (*Snapshot, error)
	// Register registers the snapshot as an image; a taken name wraps ErrExists.
	Register(ctx context.Context, r RegisterSnapshot) (*Image, error)
}

// SnapshotRemover is a finalizer whose snapshots the cloud does not hold
// (an S3 bundle): the bake removes a failed bake's snapshot through it.
type SnapshotRemover interface {
	RemoveSnapshot(ctx context.Context, id string) error
}

// Deps are what a plugin factory may use: the plugins made before it in an
// environment, shared settings and a logger.
type Deps struct {
	Cloud       Cloud
	BlockDevice BlockDevice
	Logger      *slog.Logger
	// StateDir is the working directory for volumes, mounts and locks.
	StateDir string
	// LockDir holds lock files.
	LockDir string
	// Region is the region asked for.
	Region string
	// Download fetches a package URL under the configured rules (nil:
	// the default rules).
	Download *fetch.Fetcher
}
