package distro

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin/distro/chroot"
)

// dpkgDiversions is dpkg's database of diversions: records of three lines,
// the diverted path, the path dpkg installs a package's file at instead,
// and the package that diverts it (":" for a local diversion, as
// dpkg-divert --local makes). It is edited here, as dpkg-divert does,
// rather than by running dpkg-divert in the image: the diversions must
// also go when the chroot closes, after every command has ended.
const dpkgDiversions = "var/lib/dpkg/diversions"

// divertSuffix names where dpkg puts a deferred command's real file.
const divertSuffix = ".aminator-deferred"

// localDiversion is the package field of a local diversion.
const localDiversion = ":"

type diversion struct{ from, to, by string }

func readDiversions(root *os.Root) ([]diversion, error) {
	b, err := root.ReadFile(dpkgDiversions)
	if err != nil {
		return nil, fmt.Errorf("read dpkg's diversions: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == 0 {
		lines = nil
	}
	if len(lines)%3 != 0 {
		return nil, fmt.Errorf("dpkg's diversions: %d lines, not records of three", len(lines))
	}
	var ds []diversion
	for i := 0; i < len(lines); i += 3 {
		ds = append(ds, diversion{lines[i], lines[i+1], lines[i+2]})
	}
	return ds, nil
}

// writeDiversions replaces the database in one rename, as dpkg does.
func writeDiversions(root *os.Root, ds []diversion) error {
	var b bytes.Buffer
	for _, d := range ds {
		fmt.Fprintf(&b, "%s\n%s\n%s\n", d.from, d.to, d.by)
	}
	tmp := dpkgDiversions + "-aminator"
	if err := root.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write dpkg's diversions: %w", err)
	}
	if err := root.Rename(tmp, dpkgDiversions); err != nil {
		return fmt.Errorf("write dpkg's diversions: %w", err)
	}
	return nil
}

// divert puts script at rel (usr/sbin/update-grub) for the bake, as
// `dpkg-divert --local --rename --divert rel.aminator-deferred --add rel`
// followed by writing the script would: a package installed meanwhile puts
// its file at the diverted path, and the script stays. When the chroot
// closes, undivert puts the package's file (if any) back in its place. A
// path some package diverts already is left alone: its diverter is
// returned.
func divert(c *chroot.Chroot, log *slog.Logger, rel string, script []byte) (string, error) {
	root := c.Root()
	from, to := "/"+rel, "/"+rel+divertSuffix
	ds, err := readDiversions(root)
	if err != nil {
		return "", err
	}
	for _, d := range ds {
		if d.from == from {
			return d.by, nil
		}
	}
	if err := writeDiversions(root, append(ds, diversion{from, to, localDiversion})); err != nil {
		return "", err
	}
	c.AtClose("undivert "+from, func() error { return undivert(root, log, rel, script) })
	if err := root.Rename(rel, rel+divertSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("divert %s: %w", from, err)
	}
	if err := root.WriteFile(rel, script, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", from, err)
	}
	return "", root.Chmod(rel, 0o755)
}

// undivert removes the script at rel, puts the real file back in its place
// and removes the diversion.
func undivert(root *os.Root, log *slog.Logger, rel string, script []byte) error {
	cur, err := root.ReadFile(rel)
	switch {
	case err == nil && bytes.Equal(cur, script):
		if err := root.Remove(rel); err != nil {
			return err
		}
	case err == nil || !errors.Is(err, fs.ErrNotExist):
		// Something wrote over the script, bypassing dpkg: dpkg's file wins.
		if _, serr := root.Lstat(rel + divertSuffix); serr != nil {
			log.Warn("the bake replaced a deferred command; keeping what it wrote", "path", "/"+rel)
			return removeDiversion(root, "/"+rel)
		}
		log.Warn("the bake replaced a deferred command; the package's is put back", "path", "/"+rel)
		if err := root.Remove(rel); err != nil {
			return err
		}
	}
	if err := root.Rename(rel+divertSuffix, rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return removeDiversion(root, "/"+rel)
}

// removeDiversion removes the local diversion of from that divert made.
func removeDiversion(root *os.Root, from string) error {
	ds, err := readDiversions(root)
	if err != nil {
		return err
	}
	kept := slices.DeleteFunc(ds, func(d diversion) bool {
		return d.from == from && d.to == from+divertSuffix && d.by == localDiversion
	})
	return writeDiversions(root, kept)
}
