package snapstore

import (
	"context"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sparse"
)

// openSource opens the file to store. On a reflink store, a file on
// another filesystem (an imported image) is first copied into the store's
// filesystem (staged: its data written once, in long extents) and that
// copy is stored instead: its raw chunks are clones of it, and it becomes
// the snapshot's clone, so the first volume made from it is a clone too.
// If the copy fails, the file itself is stored (then with no clone).
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

// keepClone keeps the volume f, on the store's filesystem, as the
// snapshot's clone, from which new volumes are cloned: the staged copy of
// a file from elsewhere (synced, then named), or a clone of the volume.
func (c *Chunks) keepClone(f *os.File, staged, id string) {
	var err error
	if staged != "" {
		if err = unix.Fdatasync(int(f.Fd())); err == nil {
			err = os.Rename(staged, c.cachePath(id))
		}
	} else {
		err = Clone(f.Name(), c.cachePath(id))
	}
	if err != nil {
		c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
	}
}

// sameFS reports whether f is on the filesystem of dir.
func sameFS(f *os.File, dir string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev
}
