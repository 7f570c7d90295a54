package bootdisk

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

const sector = 512

// The GPT partition types that boot, and the legacy-BIOS-bootable
// attribute (bit 2), which syslinux's gptmbr code looks for.
var (
	typeBIOSBoot = mustGUID("21686148-6449-6E6F-744E-656564454649")
	typeESP      = mustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
)

const attrLegacyBootable = 1 << 2

// Bounds on what a GPT may claim: the entry array is 16 KiB in every
// partitioning tool; a megabyte is far more than any real disk needs.
const (
	maxArrayBytes = 1 << 20
	maxEntrySize  = 4096
)

// table is a disk's partition table as far as booting goes.
type table struct {
	// kind is "gpt", "mbr", or "" (none; note says why).
	kind string
	note string
	// bootCode says the MBR's first 440 bytes are not all zero.
	bootCode bool
	parts    []part
	// skipped names the partitions that lie outside the disk.
	skipped []string
}

// part is one usable partition.
type part struct {
	num         int
	start, size int64
	typ         [16]byte // GPT type (zero for MBR partitions)
	attrs       uint64
}

func (t *table) skippedNote() string {
	if len(t.skipped) == 0 {
		return ""
	}
	return " (ignored, outside the disk: " + strings.Join(t.skipped, ", ") + ")"
}

// readTable reads the MBR and, behind a protective MBR, the GPT. A disk
// with no table, or an MBR that is not a partition table, has kind "";
// a GPT that is damaged beyond its backup is an error.
func readTable(r io.ReaderAt, size int64) (*table, error) {
	sectors := size / sector
	mbr := make([]byte, sector)
	if sectors < 1 {
		return &table{note: fmt.Sprintf("the disk is %d bytes: too short for a partition table", size)}, nil
	}
	if err := readFull(r, mbr, 0); err != nil {
		return nil, fmt.Errorf("read the MBR: %w", err)
	}
	t := &table{bootCode: !allZero(mbr[:440])}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.note = "no partition table (no MBR signature): a whole-disk filesystem has no boot loader"
		return t, nil
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			parts, skipped, err := readGPT(r, sectors)
			if err != nil {
				return nil, err
			}
			t.kind, t.parts, t.skipped = "gpt", parts, skipped
			return t, nil
		}
	}
	return readMBR(t, mbr, sectors), nil
}

// readMBR reads an MBR's four primary entries. Status bytes other than
// 0x00 and 0x80 mean the sector is not a partition table (a FAT boot
// sector, say).
func readMBR(t *table, mbr []byte, sectors int64) *table {
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		if e[0] != 0x00 && e[0] != 0x80 {
			t.note = "the first sector has a boot signature but no MBR partition table"
			return t
		}
		start, n := int64(binary.LittleEndian.Uint32(e[8:12])), int64(binary.LittleEndian.Uint32(e[12:16]))
		if e[4] == 0 || n == 0 {
			continue
		}
		if start < 1 || start+n > sectors {
			t.skipped = append(t.skipped, fmt.Sprintf("partition %d", i+1))
			continue
		}
		t.parts = append(t.parts, part{num: i + 1, start: start * sector, size: n * sector})
	}
	if len(t.parts) == 0 {
		t.note = "an MBR partition table with no partition inside the disk"
		return t
	}
	t.kind = "mbr"
	return t
}

// readGPT reads the primary GPT, or the backup at the disk's last sector
// when the primary is damaged.
func readGPT(r io.ReaderAt, sectors int64) ([]part, []string, error) {
	parts, skipped, err := gptAt(r, 1, sectors)
	if err == nil {
		return parts, skipped, nil
	}
	if sectors > 2 {
		var berr error
		if parts, skipped, berr = gptAt(r, sectors-1, sectors); berr == nil {
			return parts, skipped, nil
		}
		return nil, nil, fmt.Errorf("the GPT is damaged: primary header: %v; backup header: %v", err, berr)
	}
	return nil, nil, fmt.Errorf("the GPT is damaged: primary header: %w", err)
}

// gptHeader is the part of a GPT header that locates the partitions.
type gptHeader struct {
	firstUsable, lastUsable uint64
	entriesLBA              uint64
	count, entrySize        uint32
	arrayCRC                uint32
}

// gptAt reads the GPT header at lba and its entry array, both checked
// against their CRC32s.
func gptAt(r io.ReaderAt, lba, sectors int64) ([]part, []string, error) {
	b := make([]byte, sector)
	if err := readFull(r, b, lba*sector); err != nil {
		return nil, nil, fmt.Errorf("cannot read it: %w", err)
	}
	h, err := parseGPTHeader(b, lba, sectors)
	if err != nil {
		return nil, nil, err
	}
	array := make([]byte, uint64(h.count)*uint64(h.entrySize))
	if err := readFull(r, array, int64(h.entriesLBA)*sector); err != nil {
		return nil, nil, fmt.Errorf("cannot read the partition entries: %w", err)
	}
	if crc32.ChecksumIEEE(array) != h.arrayCRC {
		return nil, nil, errors.New("the partition entries do not match their CRC32")
	}
	parts, skipped := gptEntries(array, h)
	return parts, skipped, nil
}

// parseGPTHeader checks a header's signature, size, CRC32, own location
// and bounds.
func parseGPTHeader(b []byte, lba, sectors int64) (gptHeader, error) {
	if string(b[:8]) != "EFI PART" {
		return gptHeader{}, errors.New("no GPT signature")
	}
	hsize := binary.LittleEndian.Uint32(b[12:16])
	if hsize < 92 || hsize > sector {
		return gptHeader{}, fmt.Errorf("a header size of %d bytes", hsize)
	}
	hdr := append([]byte(nil), b[:hsize]...)
	clear(hdr[16:20])
	if crc32.ChecksumIEEE(hdr) != binary.LittleEndian.Uint32(b[16:20]) {
		return gptHeader{}, errors.New("the header does not match its CRC32")
	}
	if my := binary.LittleEndian.Uint64(b[24:32]); my != uint64(lba) {
		return gptHeader{}, fmt.Errorf("the header says it is at sector %d, not %d", my, lba)
	}
	h := gptHeader{
		firstUsable: binary.LittleEndian.Uint64(b[40:48]), lastUsable: binary.LittleEndian.Uint64(b[48:56]),
		entriesLBA: binary.LittleEndian.Uint64(b[72:80]), count: binary.LittleEndian.Uint32(b[80:84]),
		entrySize: binary.LittleEndian.Uint32(b[84:88]), arrayCRC: binary.LittleEndian.Uint32(b[88:92]),
	}
	n := uint64(sectors)
	switch {
	case h.firstUsable > h.lastUsable || h.lastUsable >= n:
		return gptHeader{}, fmt.Errorf("usable sectors %d-%d on a disk of %d sectors", h.firstUsable, h.lastUsable, n)
	case h.entrySize < 128 || h.entrySize%8 != 0 || h.entrySize > maxEntrySize:
		return gptHeader{}, fmt.Errorf("partition entries of %d bytes", h.entrySize)
	case uint64(h.count)*uint64(h.entrySize) > maxArrayBytes:
		return gptHeader{}, fmt.Errorf("%d partition entries of %d bytes: more than any disk has", h.count, h.entrySize)
	case h.entriesLBA == 0 || h.entriesLBA >= n || h.entriesLBA*sector+uint64(h.count)*uint64(h.entrySize) > n*sector:
		return gptHeader{}, fmt.Errorf("partition entries at sector %d, past the end of the disk", h.entriesLBA)
	}
	return h, nil
}

// gptEntries lists the used entries inside the usable sectors; the others
// are skipped.
func gptEntries(array []byte, h gptHeader) (parts []part, skipped []string) {
	for i := 0; i < int(h.count); i++ {
		e := array[i*int(h.entrySize) : (i+1)*int(h.entrySize)]
		if allZero(e[:16]) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:40]), binary.LittleEndian.Uint64(e[40:48])
		if first > last || first < h.firstUsable || last > h.lastUsable {
			skipped = append(skipped, fmt.Sprintf("partition %d", i+1))
			continue
		}
		p := part{num: i + 1, start: int64(first) * sector, size: int64(last-first+1) * sector, attrs: binary.LittleEndian.Uint64(e[48:56])}
		copy(p.typ[:], e[:16])
		parts = append(parts, p)
	}
	return parts, skipped
}

// readFull reads len(b) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// mustGUID encodes a GUID as a GPT stores it: the first three groups
// little-endian.
func mustGUID(s string) [16]byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("bad GUID " + s)
	}
	var g [16]byte
	copy(g[:], b)
	g[0], g[1], g[2], g[3] = g[3], g[2], g[1], g[0]
	g[4], g[5] = g[5], g[4]
	g[6], g[7] = g[7], g[6]
	return g
}

func guidString(g [16]byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}
