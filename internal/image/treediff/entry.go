package treediff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// entry is what is compared of one path besides a regular file's bytes.
type entry struct {
	typ      fs.FileMode // fs.ModeType bits: 0 for a regular file
	perm     uint32      // st_mode & 07777
	uid, gid uint32
	size     int64
	rdev     uint64
	link     string
	xattrs   map[string]string
}

// stat reads rel of root, in its open parent directory dir (nil: rel is
// the root itself), without following a symlink.
func stat(r *os.Root, dir *os.File, rel string) (entry, error) {
	fi, err := r.Lstat(rel)
	if err != nil {
		return entry{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return entry{}, fmt.Errorf("%s: no stat data", rel)
	}
	e := entry{typ: fi.Mode().Type(), perm: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, size: st.Size, rdev: st.Rdev}
	if e.typ == fs.ModeSymlink {
		if e.link, err = r.Readlink(rel); err != nil {
			return entry{}, err
		}
	}
	if e.typ&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
		e.rdev = 0
	}
	e.xattrs, err = xattrs(r, dir, rel)
	return e, err
}

// xattrs reads the extended attributes of rel: through the parent
// directory's descriptor and the entry's own name (one component, never
// followed), or, for the root, its own descriptor.
func xattrs(r *os.Root, dir *os.File, rel string) (map[string]string, error) {
	if dir == nil {
		f, err := r.Open(rel)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fd := int(f.Fd())
		return readXattrs(rel, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
			func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) })
	}
	p := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + path.Base(rel)
	return readXattrs(rel, func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) })
}

func readXattrs(rel string, list func([]byte) (int, error), get func(string, []byte) (int, error)) (map[string]string, error) {
	names, err := grow(func(b []byte) (int, error) { return list(b) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list extended attributes of %s: %w", rel, err)
	}
	var m map[string]string
	for _, n := range bytes.Split(names, []byte{0}) {
		if len(n) == 0 {
			continue
		}
		v, err := grow(func(b []byte) (int, error) { return get(string(n), b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read extended attribute %s of %s: %w", n, rel, err)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[string(n)] = string(v)
	}
	return m, nil
}

// grow calls an xattr call with a buffer of the size it asks for.
func grow(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		b := make([]byte, n)
		n, err = call(b)
		if errors.Is(err, unix.ERANGE) {
			continue // it grew between the calls
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}

// compareEntries lists the aspects in which a and b differ (beyond a
// regular file's bytes, which are hashed later).
func compareEntries(a, b entry) []string {
	if a.typ != b.typ {
		return []string{Type}
	}
	var c []string
	if a.typ == 0 && a.size != b.size || a.rdev != b.rdev {
		c = append(c, Content)
	}
	if a.perm != b.perm {
		c = append(c, Mode)
	}
	if a.uid != b.uid || a.gid != b.gid {
		c = append(c, Owner)
	}
	if !sameXattrs(a.xattrs, b.xattrs) {
		c = append(c, Xattrs)
	}
	if a.link != b.link {
		c = append(c, Link)
	}
	return c
}

func sameXattrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// hashPending hashes the pairs of equal-sized regular files, Workers at
// a time, and marks those whose contents differ.
func (w *walker) hashPending() error {
	n := w.o.Workers
	if n <= 0 {
		n = 4
	}
	jobs := make(chan int)
	differ := make([]bool, len(w.pending))
	errs := make([]error, len(w.pending))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for i := range jobs {
				differ[i], errs[i] = w.contentDiffers(w.pending[i].rel)
			}
		})
	}
feed:
	for i := range w.pending {
		select {
		case jobs <- i:
		case <-w.ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := w.ctx.Err(); err != nil {
		return err
	}
	for i, p := range w.pending {
		if errs[i] != nil {
			return errs[i]
		}
		if differ[i] {
			d := &w.diffs[p.diff]
			d.Changes = append([]string{Content}, d.Changes...)
		}
	}
	return nil
}

func (w *walker) contentDiffers(rel string) (bool, error) {
	ha, err := hashFile(w.ctx, w.a, rel)
	if err != nil {
		return false, fmt.Errorf("tree A: %w", err)
	}
	hb, err := hashFile(w.ctx, w.b, rel)
	if err != nil {
		return false, fmt.Errorf("tree B: %w", err)
	}
	return ha != hb, nil
}

// hashFile is the SHA-256 of a regular file, read in chunks that each
// check ctx, so a large file does not hold up a cancellation.
func hashFile(ctx context.Context, r *os.Root, rel string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20)); err != nil {
		return sum, fmt.Errorf("read %s: %w", rel, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
