package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/mount"
)

const backupSuffix = ".aminator-orig"

// Replace writes data at rel inside the image, keeping what was there (a
// file or a symlink, not followed) and putting it back on Close.
func (c *Chroot) Replace(rel string, data []byte, mode os.FileMode) error {
	rel = path.Clean(rel)
	backup := rel + backupSuffix
	_, err := c.root.Lstat(rel)
	had := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace /%s in the image: %w", rel, err)
	}
	if had {
		if err := c.root.Rename(rel, backup); err != nil {
			return fmt.Errorf("back up /%s in the image: %w", rel, err)
		}
	}
	c.pushRestore("restore /"+rel, func() error {
		// If the install replaced the file, the package's version stays.
		if cur, err := c.root.ReadFile(rel); err == nil && !bytes.Equal(cur, data) {
			if st, err := c.root.Lstat(rel); err == nil && st.Mode().IsRegular() {
				c.log.Warn("the install replaced a file aminator had put in place; keeping the package's", "path", "/"+rel)
				if had {
					return c.root.Remove(backup)
				}
				return nil
			}
		}
		if err := c.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if had {
			return c.root.Rename(backup, rel)
		}
		return nil
	})
	if err := c.writeFile(rel, data, mode); err != nil {
		return fmt.Errorf("write /%s in the image: %w", rel, err)
	}
	return nil
}

func (c *Chroot) writeFile(rel string, data []byte, mode os.FileMode) error {
	if err := c.root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return err
	}
	f, err := c.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BindFile makes the host file src appear read-only at rel inside the
// image (a bind mount: nothing is copied into the image). The returned
// func unmounts it and removes the mount point; Close does too.
func (c *Chroot) BindFile(src, rel string) (func() error, error) {
	rel = path.Clean(rel)
	if err := c.root.MkdirAll(path.Dir(rel), 0o700); err != nil {
		return nil, fmt.Errorf("bind %s into the image: %w", src, err)
	}
	f, err := c.root.OpenFile(rel, os.O_RDONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bind %s into the image: %w", src, err)
	}
	// The host path is used to remount and unmount, so every directory on
	// the way must be a real directory, not a symlink that leads elsewhere.
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if st, err := c.root.Lstat(d); err != nil || !st.IsDir() {
			f.Close()
			c.root.Remove(rel)
			return nil, fmt.Errorf("bind %s into the image: /%s is not a directory", src, d)
		}
	}
	host := filepath.Join(c.path, rel)
	err = unix.Mount(src, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), "", unix.MS_BIND, "")
	f.Close()
	if err == nil {
		if err = unix.Mount("", host, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(host, unix.UMOUNT_NOFOLLOW)
		}
	}
	if err != nil {
		c.root.Remove(rel)
		return nil, fmt.Errorf("bind %s into the image at /%s: %w", src, rel, err)
	}
	c.mu.Lock()
	c.mounts = append(c.mounts, host)
	c.mu.Unlock()
	return func() error {
		if err := mount.Unmount(context.Background(), host, nil); err != nil {
			return err
		}
		c.mu.Lock()
		for i, m := range c.mounts {
			if m == host {
				c.mounts = append(c.mounts[:i], c.mounts[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return c.root.Remove(rel)
	}, nil
}

// ShortCircuit replaces the command at rel with a symlink to target (say
// /bin/true) and puts the command back on Close. A missing command is skipped.
func (c *Chroot) ShortCircuit(rel, target string) error {
	rel = path.Clean(rel)
	st, err := c.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("short-circuit /%s: %w", rel, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if t, _ := c.root.Readlink(rel); t == target {
			return nil
		}
	}
	backup := rel + ".aminator-short-circuit"
	if err := c.root.Rename(rel, backup); err != nil {
		return fmt.Errorf("short-circuit /%s: %w", rel, err)
	}
	c.pushRestore("restore /"+rel, func() error {
		if t, err := c.root.Readlink(rel); err != nil || t != target {
			// The install put a new version of the command there: keep it.
			c.log.Warn("the install replaced a short-circuited command; keeping the package's", "path", "/"+rel)
			return c.root.Remove(backup)
		}
		if err := c.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return c.root.Rename(backup, rel)
	})
	if err := c.root.Symlink(target, rel); err != nil {
		return fmt.Errorf("short-circuit /%s: %w", rel, err)
	}
	return nil
}

// Keep puts the regular file at rel back as it is now when the chroot
// closes, if the bake changed, replaced or removed it: for a file the image
// needs exactly as aminator made it (a boot loader's configuration). why,
// logged when it is put back, says what it is for.
func (c *Chroot) Keep(rel, why string) error {
	rel = path.Clean(rel)
	st, err := c.root.Lstat(rel)
	if err != nil {
		return fmt.Errorf("keep /%s: %w", rel, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("keep /%s: not a regular file (%s)", rel, st.Mode().Type())
	}
	data, err := c.root.ReadFile(rel)
	if err != nil {
		return fmt.Errorf("keep /%s: %w", rel, err)
	}
	mode := st.Mode().Perm()
	c.pushRestore("put back /"+rel, func() error {
		if c.unchanged(rel, data, mode) {
			return nil
		}
		c.log.Warn("the bake changed a file aminator keeps as it made it; putting it back", "path", "/"+rel, "why", why,
			"changed_to", firstLine(c.root, rel))
		if err := c.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return c.writeFile(rel, data, mode)
	})
	return nil
}

// unchanged says whether rel is still the regular file data with mode.
func (c *Chroot) unchanged(rel string, data []byte, mode os.FileMode) bool {
	st, err := c.root.Lstat(rel)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != mode {
		return false
	}
	cur, err := c.root.ReadFile(rel)
	return err == nil && bytes.Equal(cur, data)
}

// firstLine is what rel now is, for the log: its first line (which says
// who wrote a generated file), a symlink's target, or "removed".
func firstLine(root *os.Root, rel string) string {
	st, err := root.Lstat(rel)
	switch {
	case err != nil:
		return "removed"
	case st.Mode()&fs.ModeSymlink != 0:
		t, _ := root.Readlink(rel)
		return "a symlink to " + t
	case !st.Mode().IsRegular():
		return st.Mode().Type().String()
	}
	b, _ := root.ReadFile(rel)
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(line)
}

// AtClose runs fn when the chroot closes. Close undoes in the reverse
// order of set-up, so fn runs before what was replaced or kept before the
// call is put back, after what was after it; what names it in an error.
func (c *Chroot) AtClose(what string, fn func() error) {
	c.pushRestore(what, fn)
}

func (c *Chroot) pushRestore(what string, fn func() error) {
	c.mu.Lock()
	c.restores = append(c.restores, restore{what, fn})
	c.mu.Unlock()
}
