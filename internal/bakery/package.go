package bakery

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/sys/confine"
)

// checkPackageSum checks a request's package_sha256: 64 hex digits, and
// only for a file or a URL (a repository package has no bytes of its own
// to check).
func (r *Request) checkPackageSum() error {
	if r.PackageSHA256 == "" {
		return nil
	}
	if err := fetch.CheckSum(r.PackageSHA256); err != nil {
		return fmt.Errorf("package_%w", err)
	}
	if !isLocal(r.Package) && !isURL(r.Package) {
		return fmt.Errorf("package_sha256 checks a package file or URL, not the repository package %q", r.Package)
	}
	return nil
}

func isURL(p string) bool {
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

// PinPackage fixes the bytes a request's package file bakes: it hashes
// the file (opened confined beneath dir) and sets PackageSHA256 to the
// digest, or refuses a file whose digest is not the one the request gave.
// The request's key is made of that digest, and the bake installs a copy
// it makes of the file while hashing it again, refusing a mismatch
// (pkgmgr's checked copy): so the worker bakes exactly the bytes whose
// hash made the key, whatever changes the file after submission and
// wherever the worker reads it. Hashing again at bake time, rather than
// copying the file at submission into a content-addressed place, keeps
// API servers and workers on different hosts working (they share the
// package directory, not a store) and puts no package into NATS.
func (r *Request) PinPackage(dir string) error {
	if !isLocal(r.Package) {
		return nil
	}
	sum, err := confine.Hash(dir, strings.TrimPrefix(r.Package, "file://"))
	if err != nil {
		return fmt.Errorf("package file: %w", err)
	}
	if r.PackageSHA256 != "" && !strings.EqualFold(r.PackageSHA256, sum) {
		return fmt.Errorf("package file %s has sha256 %s, not the %s asked for", r.Package, sum, strings.ToLower(r.PackageSHA256))
	}
	r.PackageSHA256 = sum
	return nil
}

// ValidateQueued checks a request a worker took off the queue as the API
// did, and that a package file comes with the digest the API pinned: a
// worker does not trust the queue.
func (r *Request) ValidateQueued(packageDir string) error {
	if err := r.Validate(packageDir); err != nil {
		return err
	}
	if isLocal(r.Package) && r.PackageSHA256 == "" {
		return errors.New("package file without the digest the API pins: not submitted through the API")
	}
	return nil
}
