// Package partition reads MBR and GPT partition tables from a disk image or
// block device, so a bake can reach a root partition without the kernel's
// partition scan (which loop devices and some hosts lack).
package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aminator-go/aminator/internal/sys/loop"
)

// Partition is one entry of a table, in bytes.
type Partition struct {
	Number int
	Start  int64
	Size   int64
	// Type is the MBR type byte as hex, or the GPT type GUID.
	Type string
}

const sector = 512

// ErrNoTable says the disk has no partition table.
var ErrNoTable = errors.New("no partition table")

// Read returns the partitions of the disk at path.
func Read(path string) ([]Partition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	defer f.Close()
	parts, err := ReadFrom(f)
	if err != nil {
		return nil, fmt.Errorf("read partition table of %s: %w", path, err)
	}
	return parts, nil
}

// ReadFrom parses the table from r.
func ReadFrom(r io.ReaderAt) ([]Partition, error) {
	mbr := make([]byte, sector)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, ErrNoTable
	}
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		if typ == 0xEE {
			return readGPT(r)
		}
		start := int64(binary.LittleEndian.Uint32(e[8:12]))
		size := int64(binary.LittleEndian.Uint32(e[12:16]))
		if typ == 0 || size == 0 {
			continue
		}
		parts = append(parts, Partition{Number: i + 1, Start: start * sector, Size: size * sector, Type: fmt.Sprintf("%02x", typ)})
	}
	return parts, nil
}

func readGPT(r io.ReaderAt) ([]Partition, error) {
	hdr := make([]byte, sector)
	if _, err := r.ReadAt(hdr, sector); err != nil {
		return nil, fmt.Errorf("gpt header: %w", err)
	}
	if string(hdr[0:8]) != "EFI PART" {
		return nil, errors.New("protective MBR but no GPT header")
	}
	entLBA := int64(binary.LittleEndian.Uint64(hdr[72:80]))
	n := int(binary.LittleEndian.Uint32(hdr[80:84]))
	esz := int(binary.LittleEndian.Uint32(hdr[84:88]))
	if esz < 128 || n > 1024 {
		return nil, fmt.Errorf("gpt: bad entry table (%d entries of %d bytes)", n, esz)
	}
	tbl := make([]byte, n*esz)
	if _, err := r.ReadAt(tbl, entLBA*sector); err != nil {
		return nil, fmt.Errorf("gpt entries: %w", err)
	}
	var parts []Partition
	for i := 0; i < n; i++ {
		e := tbl[i*esz : (i+1)*esz]
		if allZero(e[0:16]) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:40]))
		last := int64(binary.LittleEndian.Uint64(e[40:48]))
		parts = append(parts, Partition{Number: i + 1, Start: first * sector, Size: (last - first + 1) * sector, Type: guid(e[0:16])})
	}
	return parts, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func guid(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// Find returns partition n of the disk at path.
func Find(path string, n int) (Partition, error) {
	parts, err := Read(path)
	if err != nil {
		return Partition{}, err
	}
	var have []int
	for _, p := range parts {
		if p.Number == n {
			return p, nil
		}
		have = append(have, p.Number)
	}
	return Partition{}, fmt.Errorf("%s has no partition %d (has: %v)", path, n, have)
}

// Open returns a block device node for partition n of dev: the kernel's
// node when it made one (dev + "p" + n or dev + n, not for loop devices,
// whose partition scan may be off), else a loop device over the
// partition's byte range, which needs no partition scan. n == 0 is the
// whole device. release detaches what Open attached; it is safe to call twice.
func Open(ctx context.Context, dev string, n int) (path string, release func() error, err error) {
	none := func() error { return nil }
	if n == 0 {
		return dev, none, nil
	}
	if !strings.HasPrefix(filepath.Base(dev), "loop") {
		for _, cand := range []string{dev + "p" + strconv.Itoa(n), dev + strconv.Itoa(n)} {
			if st, err := os.Stat(cand); err == nil && st.Mode()&os.ModeDevice != 0 {
				return cand, none, nil
			}
		}
	}
	p, err := Find(dev, n)
	if err != nil {
		return "", nil, err
	}
	d, err := loop.Attach(ctx, dev, loop.Options{Offset: uint64(p.Start), SizeLimit: uint64(p.Size)})
	if err != nil {
		return "", nil, fmt.Errorf("partition %d of %s: %w", n, dev, err)
	}
	return d.Path, d.Detach, nil
}
