package s3bundle

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// openImage opens a raw disk (a regular file or a block device) and maps
// its data: a file's holes from SEEK_DATA/SEEK_HOLE, a block device's
// zero blocks by reading it, as GNU tar --sparse would.
func openImage(path, name string) (*os.File, *tarHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	h, err := mapImage(f, name)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, h, nil
}

func mapImage(f *os.File, name string) (*tarHeader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h := &tarHeader{name: name, mode: int64(st.Mode().Perm()), mtime: st.ModTime()}
	var runs []sparse.Extent
	switch {
	case st.Mode().IsRegular():
		h.size = st.Size()
		runs, err = sparse.DataExtents(f, h.size)
	case st.Mode()&os.ModeDevice != 0:
		if h.size, err = f.Seek(0, io.SeekEnd); err == nil {
			h.mode, h.mtime = 0o644, time.Now()
			runs, err = zeroScan(f, h.size)
		}
	default:
		return nil, fmt.Errorf("%s is neither a file nor a block device", f.Name())
	}
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	if h.size > MaxImageSize {
		return nil, fmt.Errorf("%s is %d bytes: EC2 takes bundles of images up to 10 GiB", f.Name(), h.size)
	}
	if h.size > 0 && !(len(runs) == 1 && runs[0].Off == 0 && runs[0].Len == h.size) {
		h.runs = append([]sparse.Extent{}, runs...) // a sparse member; a file all data is a plain one, as GNU tar writes it
	}
	return h, nil
}

// zeroScan lists the runs of 4 KiB blocks that are not all zero.
func zeroScan(f *os.File, size int64) ([]sparse.Extent, error) {
	const blk = 4096
	buf := make([]byte, 1<<20)
	zero := make([]byte, blk)
	var runs []sparse.Extent
	for off := int64(0); off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 && err != nil {
			return nil, err
		}
		for i := 0; i < n; i += blk {
			b := buf[i:min(i+blk, n)]
			if bytes.Equal(b, zero[:len(b)]) {
				continue
			}
			at := off + int64(i)
			if k := len(runs); k > 0 && runs[k-1].Off+runs[k-1].Len == at {
				runs[k-1].Len += int64(len(b))
			} else {
				runs = append(runs, sparse.Extent{Off: at, Len: int64(len(b))})
			}
		}
		off += int64(n)
	}
	return runs, nil
}
