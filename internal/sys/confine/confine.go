// Package confine opens a file a stranger named only if it lies beneath
// one directory: the path is resolved by the kernel with openat2 from the
// directory, with RESOLVE_BENEATH (no `..` or absolute path out of it),
// RESOLVE_NO_SYMLINKS (no symlink as any component, the last or one in
// the middle) and RESOLVE_NO_MAGICLINKS (no /proc/PID/fd-style link), in
// the one call that opens it, so nothing that changes between a check and
// the open can lead elsewhere. The file must be a regular file; a FIFO or
// device is refused without blocking on it.
package confine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Open opens path for reading if it is a regular file beneath dir
// (path: absolute, or relative to dir), every component resolved without
// following a symlink.
func Open(dir, path string) (*os.File, error) {
	rel, err := relative(dir, path)
	if err != nil {
		return nil, err
	}
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("package directory %s: %w", dir, err)
	}
	defer unix.Close(d)
	fd, err := unix.Openat2(d, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, explain(path, dir, err)
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// relative is path as openat2 resolves it from dir: an absolute path must
// name something under dir.
func relative(dir, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return path, nil
	}
	rel, err := filepath.Rel(filepath.Clean(dir), path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is not under %s", path, dir)
	}
	return rel, nil
}

func explain(path, dir string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%s: a component is a symlink, which is not followed under %s", path, dir)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%s leads out of %s", path, dir)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%s: this kernel has no openat2 (Linux 5.6 or later is needed to confine package files)", path)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Hash is the hex SHA-256 of the regular file path beneath dir, read as
// Open opens it.
func Hash(dir, path string) (string, error) {
	f, err := Open(dir, path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
