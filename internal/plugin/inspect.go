package plugin

import "context"

// Inspector is implemented by provisioners that can say, before anything
// is installed, which package a bake will install, so that the image name
// it makes can be checked before any work.
type Inspector interface {
	// Inspect reads what ref will install without a volume: a local
	// file's package data, a URL's once downloaded (the returned ref then
	// has Path set, a file the caller removes), or a repository package
	// given with its version. It returns a nil PackageInfo when only
	// Resolve can tell.
	Inspect(ctx context.Context, ref PackageRef) (PackageRef, *PackageInfo, error)
	// Resolve refreshes the package manager's metadata in the mounted
	// image and says which version of a repository package it would
	// install, installing nothing. The returned ref is pinned to that
	// version (and marked Resolved), so Provision installs what was checked.
	Resolve(ctx context.Context, c Chroot, ref PackageRef) (PackageRef, *PackageInfo, error)
}
