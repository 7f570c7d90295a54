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
	return cloneFile(in, dst)
}

// cloneFile makes dst a reflink copy of the open file in, replacing dst
// atomically.
func cloneFile(in *os.File, dst string) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".clone-*")
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(tmp.Fd()), int(in.Fd())); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("clone %s: %w", in.Name(), err)
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
	// fiemapExtentUnwritten: allocated, reads as zeros.
	fiemapExtentUnwritten = 0x800
	// fiemapUnsure are the flags under which an extent's physical
	// address says nothing about its bytes: unknown, delayed allocation,
	// encoded (compressed), encrypted, not block-aligned, inline, tail.
	fiemapUnsure = 0x2 | 0x4 | 0x8 | 0x80 | 0x100 | 0x200 | 0x400
	fiemapBatch  = 256
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

// extent is one mapped range of a file: its bytes [logical,
// logical+length) lie at physical on the device.
type extent struct {
	logical, physical, length uint64
	flags                     uint32
}

// fileExtents maps f's first size bytes (after writing back its dirty
// data), in order; holes are not listed.
func fileExtents(f *os.File, size int64) ([]extent, error) {
	var out []extent
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
			out = append(out, extent{e.Logical, e.Physical, e.Length, e.Flags})
			start = e.Logical + e.Length
			last = last || e.Flags&fiemapExtentLast != 0
		}
		if last {
			break
		}
	}
	return out, nil
}

// sameBlocks reports, per chunk of a file a (size bytes), whether its
// bytes are provably those of file b (bSize bytes) at the same offsets:
// every byte of the chunk is a hole in both, or lies at the same physical
// address in both, in extents whose addresses mean something (none of
// fiemapUnsure) and equally written. A filesystem never writes a shared
// block in place, so the same address holds the same bytes. Sharing with
// other files proves nothing; a chunk that b does not hold whole (b is
// shorter) is not the same.
func sameBlocks(a, b []extent, size, bSize int64, chunk int) []bool {
	n := int((size + int64(chunk) - 1) / int64(chunk))
	out := make([]bool, n)
	for i := range out {
		ce := int64(i+1) * int64(chunk)
		out[i] = min(ce, size) == min(ce, bSize)
	}
	differ := func(lo, hi uint64) {
		for i := lo / uint64(chunk); i < uint64(n) && i*uint64(chunk) < hi; i++ {
			out[i] = false
		}
	}
	walkPairs(a, b, uint64(size), func(lo, hi uint64, ea, eb *extent) {
		if !sameMapping(lo, ea, eb) {
			differ(lo, hi)
		}
	})
	return out
}

// sameMapping reports whether the byte at lo is the same in two files
// that map it by ea and eb (nil for a hole).
func sameMapping(lo uint64, ea, eb *extent) bool {
	switch {
	case ea == nil || eb == nil:
		return ea == nil && eb == nil
	case (ea.flags|eb.flags)&fiemapUnsure != 0:
		return false
	case ea.flags&fiemapExtentUnwritten != eb.flags&fiemapExtentUnwritten:
		return false
	}
	return ea.physical+(lo-ea.logical) == eb.physical+(lo-eb.logical)
}

// walkPairs splits [0, end) into pieces over which a and b each keep one
// extent (or hole, nil) and calls fn for each.
func walkPairs(a, b []extent, end uint64, fn func(lo, hi uint64, ea, eb *extent)) {
	at := func(es []extent, k *int, x uint64) (*extent, uint64) {
		for *k < len(es) && es[*k].logical+es[*k].length <= x {
			*k++
		}
		if *k == len(es) {
			return nil, end
		}
		if e := &es[*k]; e.logical <= x {
			return e, e.logical + e.length
		}
		return nil, es[*k].logical // a hole up to the next extent
	}
	var ka, kb int
	for x := uint64(0); x < end; {
		ea, na := at(a, &ka, x)
		eb, nb := at(b, &kb, x)
		hi := min(na, nb, end)
		fn(x, hi, ea, eb)
		x = hi
	}
}
