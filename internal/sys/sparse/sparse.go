// Package sparse copies files while keeping their holes: only the extents
// that SEEK_DATA/SEEK_HOLE report as data are read and written, with
// copy_file_range so the kernel moves the bytes (and may share them).
package sparse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Extent is a run of data in a file.
type Extent struct{ Off, Len int64 }

// DataExtents lists the data runs of f up to size.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	var out []Extent
	fd := int(f.Fd())
	off := int64(0)
	for off < size {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data after off
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{0, size}}, nil // no hole support: all data
		}
		if err != nil {
			return nil, fmt.Errorf("seek data in %s: %w", f.Name(), err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole in %s: %w", f.Name(), err)
		}
		if end > size {
			end = size
		}
		out = append(out, Extent{start, end - start})
		off = end
	}
	return out, nil
}

// CopyFile copies src to dst (replacing it atomically: a temporary file is
// written, synced and renamed), keeping holes. It returns the data bytes copied.
func CopyFile(ctx context.Context, dst, src string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("copy to %s: %w", dst, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := Copy(ctx, tmp, in, st.Size())
	if err != nil {
		return 0, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("rename to %s: %w", dst, err)
	}
	ok = true
	return n, nil
}

// Copy copies size bytes of in to out, keeping holes; out ends up size long.
func Copy(ctx context.Context, out, in *os.File, size int64) (int64, error) {
	exts, err := DataExtents(in, size)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, e := range exts {
		off := e.Off
		for off < e.Off+e.Len {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			chunk := min(e.Off+e.Len-off, 64<<20)
			inOff, outOff := off, off
			n, err := unix.CopyFileRange(int(in.Fd()), &inOff, int(out.Fd()), &outOff, int(chunk), 0)
			if err != nil || n == 0 {
				// Fall back to read/write (cross-filesystem on old kernels, or EOF race).
				if n2, err2 := copyRange(out, in, off, chunk); err2 != nil {
					return total, err2
				} else {
					n = int(n2)
				}
			}
			off += int64(n)
			total += int64(n)
		}
	}
	if err := out.Truncate(size); err != nil {
		return total, fmt.Errorf("truncate %s: %w", out.Name(), err)
	}
	return total, nil
}

func copyRange(out, in *os.File, off, n int64) (int64, error) {
	buf := make([]byte, min(n, 1<<20))
	var done int64
	for done < n {
		k, err := in.ReadAt(buf[:min(int64(len(buf)), n-done)], off+done)
		if k > 0 {
			if _, werr := out.WriteAt(buf[:k], off+done); werr != nil {
				return done, werr
			}
			done += int64(k)
		}
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
