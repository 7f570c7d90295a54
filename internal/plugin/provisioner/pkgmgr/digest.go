package pkgmgr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Cacher is a Backend whose package manager keeps the files it downloaded
// in the image until Clean (apt's archives): the driver hashes the
// installed package's file there, for the image's provenance, before it
// cleans. A backend that is not a Cacher (dnf removes its files once
// installed) leaves a repository package's SHA-256 unknown.
type Cacher interface {
	// Cached is the directory (relative to the image's root) and the
	// file name pattern (path.Match) of the downloaded file of info.
	Cached(info *plugin.PackageInfo) (dir, pattern string)
}

// fileDigest hashes a package file on the host (the one the bake
// installs), unless its SHA-256 was given and checked; it runs beside
// the install, and its result is read once the install is done.
func fileDigest(ref plugin.PackageRef) <-chan string {
	out := make(chan string, 1)
	if ref.SHA256 != "" {
		out <- strings.ToLower(ref.SHA256)
		return out
	}
	go func() {
		sum, err := hashFile(ref.Path)
		if err != nil {
			sum = "" // the install reads the same file and says why
		}
		out <- sum
	}()
	return out
}

func hashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(name, f)
}

func hashReader(name string, r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cachedDigest hashes the repository package's downloaded file in the
// image, through the image's root (a symlink there cannot lead out):
// "" when the backend keeps none or the file is not there.
func (d *Driver) cachedDigest(c plugin.Chroot, info *plugin.PackageInfo) string {
	cc, ok := d.b.(Cacher)
	if !ok {
		return ""
	}
	dir, pattern := cc.Cached(info)
	entries, err := fs.ReadDir(c.Root().FS(), dir)
	if err != nil {
		d.o.Log.Debug("no package cache to hash the package in", "dir", dir, "err", err)
		return ""
	}
	for _, e := range entries {
		if ok, _ := path.Match(pattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		sum, err := hashRooted(c.Root(), path.Join(dir, e.Name()))
		if err == nil {
			return sum
		}
		d.o.Log.Debug("cannot hash the cached package", "file", e.Name(), "err", err)
	}
	return ""
}

func hashRooted(r *os.Root, name string) (string, error) {
	f, err := r.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(name, f)
}
