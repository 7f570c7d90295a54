package snapstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// cloneRecord is the extended attribute of a clone (cache/ID.img) naming
// what it holds: the SHA-256 of its snapshot's manifest. It is set only
// once the clone's data is durable, and a clone is used only while it
// matches the manifest, so a clone left from before, half made, or of
// another manifest of the same id is never taken for the snapshot.
const cloneRecord = "user.aminator.manifest"

// openSource opens the file to store. On a reflink store, a file on
// another filesystem (an imported image) is first copied into the store's
// filesystem (staged: its data written once, in long extents) and that
// copy is stored instead: its raw chunks are clones of it, and it becomes
// the snapshot's clone, so the first volume made from it is a clone too.
// If the copy fails, the file itself is stored (then with no clone). A
// file on the store's filesystem (a volume) is stored as it is: its data
// is in the page cache, where a clone's would be read from disk again.
func (c *Chunks) openSource(ctx context.Context, id, src string) (f *os.File, staged string, err error) {
	if f, err = os.Open(src); err != nil || !c.reflink || sameFS(f, c.dir) {
		return f, "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "cache"), "."+id+".img.tmp-*")
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			_, err = sparse.Copy(ctx, tmp, f, st.Size())
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
	c.log.Debug("stored from its own filesystem: no clone of the snapshot for fast volumes", "err", err)
	return f, "", nil
}

// keepClone keeps the file f, on the store's filesystem, as the snapshot's
// clone, recorded as holding the manifest whose hash is sum: the staged
// copy of a file from elsewhere (synced, recorded, then named), or a clone
// of the volume (recordClone).
func (c *Chunks) keepClone(f *os.File, staged, id, sum string) {
	var err error
	if staged == "" {
		err = c.recordClone(f.Name(), id, sum)
	} else if err = f.Sync(); err == nil {
		if err = unix.Fsetxattr(int(f.Fd()), cloneRecord, []byte(sum), 0); err == nil {
			err = os.Rename(staged, c.cachePath(id))
		}
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
