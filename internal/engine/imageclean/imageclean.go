// Package imageclean removes from an image, before its snapshot, what a
// running system or the build left that must be unique per instance or
// must not ship: SSH host keys, the machine-id, cloud-init's instance
// state, random seeds, DHCP leases, shell history, temporary files, the
// package managers' logs and apt's downloads. The list is one table
// (rules); docs/security.md's is checked against it.
//
// The image's files are untrusted: Clean works only through an *os.Root,
// so no symlink in the image, however it points, leads it to remove or
// write anything outside. A symlink that matches is removed itself; a
// directory that leads out of the image is skipped and reported.
//
// An image with an SSH server and no cloud-init would boot without host
// keys (Debian's ssh.service fails then): Clean installs a first-boot
// unit that makes them, so every instance gets its own. cloud-init's ssh
// module makes them itself.
package imageclean

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Report is what Clean did. Paths are the image's, from its root ("/etc/...").
type Report struct {
	// Removed are the paths removed (or emptied), by group in the table's
	// order; a group with nothing removed is left out.
	Removed []Removed
	// Installed are the files written: the first-boot unit that makes the
	// SSH host keys, and the links that enable it.
	Installed []string
	// Skipped are the paths not looked into because they lead out of the
	// image (a symlink pointing outside or absolute).
	Skipped []string
}

// Removed are one group's removed paths.
type Removed struct {
	Group string
	Paths []string
}

// hostname names the build host (a variable for the tests).
var hostname = os.Hostname

// Clean removes from the image at root everything the table lists, and
// installs the first-boot unit for SSH host keys where nothing else makes
// them. It logs one Info line per group (the paths at Debug). A path it
// cannot remove fails it: the image would ship with it.
func Clean(root *os.Root, log *slog.Logger) (Report, error) {
	var rep Report
	host, _ := hostname()
	err := rep.apply(root, host)
	if err == nil && needsKeyUnit(root) {
		rep.Installed, err = installKeyUnit(root)
	}
	rep.Skipped = slices.Compact(slices.Sorted(slices.Values(rep.Skipped)))
	rep.log(log)
	return rep, err
}

// apply removes what each rule names, in order.
func (rep *Report) apply(root *os.Root, host string) error {
	for _, r := range rules {
		done, skipped, err := r.apply(root, host)
		rep.Skipped = append(rep.Skipped, skipped...)
		if len(done) > 0 {
			rep.Removed = append(rep.Removed, Removed{Group: r.Group, Paths: done})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", r.Group, err)
		}
	}
	return nil
}

func (rep *Report) log(log *slog.Logger) {
	for _, g := range rep.Removed {
		log.Info("removed from the image", "group", g.Group, "paths", len(g.Paths))
		log.Debug("removed from the image", "group", g.Group, "list", strings.Join(g.Paths, " "))
	}
	for _, p := range rep.Skipped {
		log.Warn("not cleaned: it leads out of the image", "path", p)
	}
	if len(rep.Installed) > 0 {
		log.Info("SSH host keys are made at first boot", "unit", rep.Installed[0])
	}
}

// apply removes (or empties) what r names and returns what it changed
// and what it skipped.
func (r rule) apply(root *os.Root, host string) (done, skipped []string, err error) {
	for _, pat := range r.Empty {
		found, skip := match(root, pat, r.Except)
		skipped = append(skipped, skip...)
		for _, p := range found {
			changed, err := empty(root, p)
			if err != nil {
				return done, skipped, fmt.Errorf("empty /%s: %w", p, err)
			}
			if changed {
				done = append(done, "/"+p)
			}
		}
	}
	for _, pat := range r.Remove {
		found, skip := match(root, pat, r.Except)
		skipped = append(skipped, skip...)
		for _, p := range found {
			if r.IfBuildHost && !namesHost(root, p, host) {
				continue
			}
			if err := root.RemoveAll(p); err != nil {
				return done, skipped, fmt.Errorf("remove /%s: %w", p, err)
			}
			done = append(done, "/"+p)
		}
	}
	return done, skipped, nil
}

// match returns the paths in the image pattern names (a dangling symlink
// too), and the paths it could not look into because they lead out of
// the image. Directories on the way are followed inside the image only;
// the last component never is.
func match(root *os.Root, pattern string, except []string) (found, skipped []string) {
	paths := []string{"."}
	for _, part := range strings.Split(pattern, "/") {
		var next []string
		for _, dir := range paths {
			names, err := entries(root, dir, part, except)
			if err != nil {
				skipped = append(skipped, "/"+dir)
				continue
			}
			for _, n := range names {
				next = append(next, path.Join(dir, n))
			}
		}
		paths = next
	}
	for _, p := range paths {
		if _, err := root.Lstat(p); err == nil {
			found = append(found, p)
		} else if !notThere(err) {
			skipped = append(skipped, "/"+p)
		}
	}
	return found, skipped
}

// entries are the names in dir that part matches, except those listed.
func entries(root *os.Root, dir, part string, except []string) ([]string, error) {
	if !strings.ContainsAny(part, `*?[\`) {
		return []string{part}, nil
	}
	ents, err := fs.ReadDir(root.FS(), dir)
	if notThere(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if ok, _ := path.Match(part, e.Name()); ok && !slices.Contains(except, e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// notThere says err is a path that does not exist (or runs through a file).
func notThere(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// empty truncates the file at p, in place if it is a regular file of one
// link (its owner, mode and labels kept), and otherwise (a symlink, a
// directory, a hard link that might be another's) replaces it with an
// empty file. It says whether anything changed.
func empty(root *os.Root, p string) (bool, error) {
	st, err := root.Lstat(p)
	if err != nil {
		return false, err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); st.Mode().IsRegular() && ok && sys.Nlink == 1 {
		if st.Size() == 0 {
			return false, nil
		}
		f, err := root.OpenFile(p, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			return false, err
		}
		return true, f.Close()
	}
	return true, writeNew(root, p, nil, 0o444)
}

// writeNew replaces whatever is at p with a new file holding data.
func writeNew(root *os.Root, p string, data []byte, mode fs.FileMode) error {
	if err := root.RemoveAll(p); err != nil {
		return err
	}
	f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // past the umask
	}
	return errors.Join(err, f.Close())
}

// namesHost says the regular file at p holds host's name (its first
// label is host's, as `hostname --fqdn` or the short name would write).
func namesHost(root *os.Root, p, host string) bool {
	f, err := root.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return false
	}
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	first := func(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "."); return strings.ToLower(l) }
	return host != "" && first(string(buf[:n])) == first(host)
}
