package snapstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sparse"
)

// cloneRecord is the extended attribute of a clone (cache/ID.img) naming
// what it holds: the SHA-256 of its snapshot's manifest. It is set only
// once the clone's data is durable, and a clone is used only while it
// matches the manifest, so a clone left from before, half made, or of
// another manifest of the same id is never taken for the snapshot.
const cloneRecord = "user.aminator.manifest"

// openSource opens the file to store. On a reflink store it stores a
// private copy in the store's filesystem (staged: cache/.ID.img.tmp-*),
// which becomes the snapshot's clone: a clone of a volume on the store's
// filesystem, or, for a file on another filesystem (an imported image),
// a copy (its data written once, in long extents). The manifest, the
// chunks cloned from it and the clone are then made from the same bytes
// however the volume changes meanwhile. If the copy fails, the file
// itself is stored (then with no clone).
func (c *Chunks) openSource(ctx context.Context, id, src string) (f *os.File, staged string, err error) {
	if f, err = os.Open(src); err != nil || !c.reflink {
		return f, "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "cache"), "."+id+".img.tmp-*")
	if err == nil {
		if sameFS(f, c.dir) {
			err = unix.IoctlFileClone(int(tmp.Fd()), int(f.Fd()))
		} else {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil {
				_, err = sparse.Copy(ctx, tmp, f, st.Size())
			}
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			var copied *os.File
			if copied, err = os.Open(tmp.Name()); err == nil {
				f.Close()
				return copied, tmp.Name(), nil
			}
		}
		os.Remove(tmp.Name())
	}
	c.log.Debug("stored from the file itself: no clone of the snapshot for fast volumes", "err", err)
	return f, "", nil
}

// keepClone makes the staged copy f the snapshot's clone: synced, its
// record set to the manifest's hash sum, then named.
func (c *Chunks) keepClone(f *os.File, staged, id, sum string) {
	err := f.Sync()
	if err == nil {
		err = unix.Fsetxattr(int(f.Fd()), cloneRecord, []byte(sum), 0)
	}
	if err == nil {
		err = os.Rename(staged, c.cachePath(id))
	}
	if err != nil {
		c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
	}
}

// recordClone makes a clone of the file at src (holding snapshot id, whose
// manifest hashes to sum) the snapshot's clone, replacing any other.
func (c *Chunks) recordClone(src, id, sum string) error {
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "cache"), "."+id+".img.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	in, err := os.Open(src)
	if err == nil {
		err = unix.IoctlFileClone(int(tmp.Fd()), int(in.Fd()))
		in.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = unix.Fsetxattr(int(tmp.Fd()), cloneRecord, []byte(sum), 0)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.cachePath(id))
	}
	if err != nil {
		return fmt.Errorf("clone of snapshot %s: %w", id, err)
	}
	return nil
}

// verifiedClone opens snapshot id's clone if its record matches the
// manifest's hash sum; nil if there is none that does.
func (c *Chunks) verifiedClone(id, sum string) *os.File {
	f, err := os.Open(c.cachePath(id))
	if err != nil {
		return nil
	}
	buf := make([]byte, 128)
	n, err := unix.Fgetxattr(int(f.Fd()), cloneRecord, buf)
	if err != nil || string(buf[:n]) != sum {
		f.Close()
		return nil
	}
	return f
}

// sameFS reports whether f is on the filesystem of dir.
func sameFS(f *os.File, dir string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev
}
