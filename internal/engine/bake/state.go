package bake

import (
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// State is what a bake's steps share: what was asked, the plugins, the
// undo stack, and what each step found or made, in the order the steps
// fill it in. A foundation fills in the same fields with its own steps
// and reuses the shared ones (CreateVolume, AttachVolume, Snapshot,
// Register).
type State struct {
	Env  *Environment
	Req  Request
	Log  *slog.Logger
	Undo *undo.Stack

	// The plan, found before any volume is made.

	// Ref is the package to install (pinned to a version once resolved).
	Ref plugin.PackageRef
	// Base is the image baked on (nil for a foundation) and BaseRoot its
	// root device's mapping.
	Base     *plugin.Image
	BaseRoot *plugin.BlockDeviceMapping
	// BaseBytes is the base's root snapshot's size, Size the volume's.
	BaseBytes, Size int64
	// Grow says the root filesystem is grown to fill a larger volume.
	Grow bool
	Arch string
	// Known is the package as known before it is installed (nil: not yet).
	Known *plugin.PackageInfo
	// Name is the image's name once known and checked free ("": not yet).
	Name string

	// The volume, attached and mounted.

	Volume *plugin.Volume
	// Device is the volume's block device on this host.
	Device     string
	MountPoint string
	Chroot     plugin.Chroot
	// Unmount is the chroot's undo, run early before the snapshot.
	Unmount *undo.Action

	// What the package and the image's scripts did.

	// Package is the installed package.
	Package *plugin.PackageInfo
	// ScriptEnv is the AMINATOR_* environment of the image's scripts and
	// of the interactive shell.
	ScriptEnv map[string]string
	// RanInImage says something ran in the image after the package was
	// installed (an image script, the interactive shell): what the
	// provisioner read then may be out of date.
	RanInImage bool
	Manifest   []plugin.Package
	// Inventory is the image's packages as its SBOM lists them, read
	// from its package database (nil: not attested).
	Inventory *sbom.Inventory
	// DiskDigest is the volume's disk digest when the bake read it
	// itself ("": the cloud gives the snapshot's).
	DiskDigest string
	// Started is when the bake started, as its provenance says.
	Started time.Time

	// The image.

	// NewImage is the image to register; the finalizer adds the block
	// device mappings. SnapshotTags go on its snapshot, VolumeType is its
	// root volume's type.
	NewImage     plugin.ImageRequest
	SnapshotTags plugin.Tags
	VolumeType   string
	Snapshot     *plugin.Snapshot
	Image        *plugin.Image
	// Copies are the image's copies in other regions.
	Copies []plugin.RegionImage
}

// NewState starts the state of a bake (or a foundation) with an empty
// undo stack.
func NewState(env *Environment, req Request, log *slog.Logger) *State {
	return &State{Env: env, Req: req, Log: log, Undo: undo.New(log), Started: time.Now()}
}

// fields are the image name's fields for pkg.
func (s *State) fields(pkg *plugin.PackageInfo) naming.Fields {
	return naming.Fields{Name: pkg.Name, Version: pkg.Version, Release: pkg.Release, Arch: s.Arch, Suffix: s.Req.Suffix, StoreType: s.Env.Finalizer.StoreType()}
}

// imageName is the name pkg makes (or the one given).
func (s *State) imageName(pkg *plugin.PackageInfo) string {
	return naming.ImageName(s.Req.Name, s.fields(pkg))
}
