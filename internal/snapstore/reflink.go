package snapstore

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CanReflink reports whether files in dir can be cloned (FICLONE): true on
// xfs with reflink and btrfs, false on ext4.
func CanReflink(dir string) bool {
	a, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(a.Name())
	defer a.Close()
	a.Write(make([]byte, 4096))
	b, err := os.CreateTemp(dir, ".reflink-probe-*")
	if err != nil {
		return false
	}
	defer os.Remove(b.Name())
	defer b.Close()
	return unix.IoctlFileClone(int(b.Fd()), int(a.Fd())) == nil
}

// Clone makes dst a reflink copy of src (sharing every block; instant),
// replacing dst atomically.
func Clone(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".clone-*")
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(tmp.Fd()), int(in.Fd())); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("clone %s: %w", src, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// FIEMAP, from linux/fiemap.h (x/sys/unix does not define it).
const (
	fsIocFiemap        = 0xC020660B
	fiemapFlagSync     = 0x1
	fiemapExtentLast   = 0x1
	fiemapExtentShared = 0x2000
	fiemapBatch        = 256
)

type fiemapHeader struct {
	Start, Length                            uint64
	Flags, MappedExtents, ExtentCount, _resv uint32
}

type fiemapExtent struct {
	Logical, Physical, Length uint64
	_resv64                   [2]uint64
	Flags                     uint32
	_resv                     [3]uint32
}

// sharedChunks reports, per chunk of f, whether every byte of it lies in
// extents shared with another file (so unchanged since f was cloned).
// Chunks with holes are not shared.
func sharedChunks(f *os.File, size int64, chunk int) ([]bool, error) {
	n := int((size + int64(chunk) - 1) / int64(chunk))
	// covered[i] counts the bytes of chunk i in shared extents.
	covered := make([]int64, n)
	buf := make([]byte, int(unsafe.Sizeof(fiemapHeader{}))+fiemapBatch*int(unsafe.Sizeof(fiemapExtent{})))
	start := uint64(0)
	for start < uint64(size) {
		clear(buf)
		h := (*fiemapHeader)(unsafe.Pointer(&buf[0]))
		h.Start, h.Length, h.Flags, h.ExtentCount = start, uint64(size)-start, fiemapFlagSync, fiemapBatch
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
			return nil, fmt.Errorf("fiemap %s: %w", f.Name(), errno)
		}
		if h.MappedExtents == 0 {
			break
		}
		exts := unsafe.Slice((*fiemapExtent)(unsafe.Pointer(&buf[unsafe.Sizeof(fiemapHeader{})])), h.MappedExtents)
		last := false
		for _, e := range exts {
			if e.Flags&fiemapExtentShared != 0 {
				lo, hi := int64(e.Logical), int64(e.Logical+e.Length)
				hi = min(hi, size)
				for i := lo / int64(chunk); i < int64(n) && i*int64(chunk) < hi; i++ {
					cs, ce := i*int64(chunk), min((i+1)*int64(chunk), size)
					covered[i] += min(ce, hi) - max(cs, lo)
				}
			}
			start = e.Logical + e.Length
			last = last || e.Flags&fiemapExtentLast != 0
		}
		if last {
			break
		}
	}
	out := make([]bool, n)
	for i := range out {
		ce := min(int64(i+1)*int64(chunk), size)
		out[i] = covered[i] == ce-int64(i)*int64(chunk)
	}
	return out, nil
}
