package pkgmgr

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// parseRef classifies raw: an http(s) URL, a local file (a path, file://,
// or a name ending in ext such as ".deb"), or else a repository package,
// which repo checks and splits.
func parseRef(raw, ext string, repo func(raw string) (name, version string, err error)) (plugin.PackageRef, error) {
	r := plugin.PackageRef{Raw: raw}
	switch {
	case raw == "":
		return r, errors.New("no package given")
	case strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return r, fmt.Errorf("package URL %q is not a valid URL", raw)
		}
		r.Kind, r.URL = kindURL, raw
	case strings.HasPrefix(raw, "file://") || strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") ||
		strings.HasPrefix(raw, "../") || strings.HasSuffix(raw, ext):
		p := strings.TrimPrefix(raw, "file://")
		abs, err := filepath.Abs(p)
		if err != nil {
			return r, fmt.Errorf("package file %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return r, fmt.Errorf("package file: %w", err)
		}
		if !st.Mode().IsRegular() {
			return r, fmt.Errorf("package file %s is not a regular file", abs)
		}
		r.Kind, r.Path = kindFile, abs
	default:
		r.Kind = kindRepo
		var err error
		if r.Name, r.Version, err = repo(raw); err != nil {
			return r, err
		}
	}
	return r, nil
}

// stage shows the host file at a fresh path under the image's /tmp, named
// base (say package.deb), and returns that path as the chroot sees it. The
// file is bind-mounted read-only, not copied: its bytes never land in the
// image, nor in its snapshot. done removes it.
func stage(c plugin.Chroot, file, base string) (inImage string, done func(), err error) {
	var b [6]byte
	rand.Read(b[:])
	dir := "tmp/aminator-" + hex.EncodeToString(b[:])
	if err := c.Root().MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("stage package in the image: %w", err)
	}
	rel := dir + "/" + base
	unbind, err := c.BindFile(file, rel)
	if err != nil {
		c.Root().RemoveAll(dir)
		return "", nil, err
	}
	return "/" + rel, func() {
		unbind()
		c.Root().RemoveAll(dir)
	}, nil
}
