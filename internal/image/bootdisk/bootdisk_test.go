package bootdisk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
)

// Real small disks, made with sfdisk, mkfs.vfat and mtools, read back.
func TestDetect(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		what string
		disk bootdisktest.Disk
		tag  string
		uefi []string
		// notes that must be said about the missing loaders
		bios, efi string
	}{
		{"a whole-disk filesystem", bootdisktest.Disk{BootCode: true}, TagNone, nil, "whole-disk filesystem", "whole-disk filesystem"},
		{"GPT with a BIOS boot partition, boot code and an ESP: Debian's cloud layout",
			bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}}, TagBoth, []string{"x86_64"}, "", ""},
		{"an ESP only (--layout uefi)", bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTX64.EFI"}}, TagUEFI, []string{"x86_64"}, "all zero", ""},
		{"a loader whose FAT name is lower case", bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"bootx64.efi"}}, TagUEFI, []string{"x86_64"}, "all zero", ""},
		{"both architectures' loaders", bootdisktest.Disk{Label: "gpt", ESP: true, Loaders: []string{"BOOTAA64.EFI", "BOOTX64.EFI"}}, TagUEFI, []string{"arm64", "x86_64"}, "all zero", ""},
		{"a BIOS boot partition without boot code", bootdisktest.Disk{Label: "gpt", BIOSBoot: true}, TagNone, nil, "all zero", "no EFI system partition"},
		{"GPT, boot code, no BIOS boot partition", bootdisktest.Disk{Label: "gpt", BootCode: true, ESP: true, Loaders: []string{"BOOTAA64.EFI"}}, TagUEFI, []string{"arm64"}, "no BIOS boot partition", ""},
		{"GPT for BIOS only", bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true}, TagBIOS, nil, "", "no EFI system partition"},
		{"MBR with boot code", bootdisktest.Disk{Label: "dos", BootCode: true}, TagBIOS, nil, "", "no GPT"},
		{"MBR without boot code (--layout gpt's cousin)", bootdisktest.Disk{Label: "dos"}, TagNone, nil, "all zero", "no GPT"},
		{"an empty ESP", bootdisktest.Disk{Label: "gpt", ESP: true}, TagNone, nil, "all zero", `has no \EFI\BOOT\BOOTX64.EFI`},
	} {
		path, _ := bootdisktest.Make(t, dir, tc.disk)
		l, err := Detect(context.Background(), path)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if l.Tag() != tc.tag || !reflect.DeepEqual(l.UEFIArchs, tc.uefi) || !strings.Contains(l.BIOSNote, tc.bios) || !strings.Contains(l.UEFINote, tc.efi) ||
			(l.BIOS && l.BIOSNote != "") || (l.UEFI && l.UEFINote != "") {
			t.Errorf("%s: %+v, want %s %v (notes %q, %q)", tc.what, l, tc.tag, tc.uefi, tc.bios, tc.efi)
		}
		// The same through a reader, as push reads a snapshot's chunks.
		b, _ := os.ReadFile(path)
		scratch := t.TempDir()
		if lr, err := DetectFrom(context.Background(), bytes.NewReader(b), int64(len(b)), scratch); err != nil || !reflect.DeepEqual(lr, l) {
			t.Errorf("%s: DetectFrom %+v %v, Detect %+v", tc.what, lr, err, l)
		}
		if left, _ := os.ReadDir(scratch); len(left) != 0 {
			t.Errorf("%s: DetectFrom left %v", tc.what, left)
		}
	}
}

// An ESP that is not a FAT filesystem has no loader, and says so.
func TestESPNotFAT(t *testing.T) {
	path, _ := bootdisktest.Make(t, t.TempDir(), bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(make([]byte, 1<<20), 2<<20) // the ESP's boot sector and FATs
	f.Close()
	l, err := Detect(context.Background(), path)
	if err != nil || l.Tag() != TagBIOS || !strings.Contains(l.UEFINote, "not a FAT filesystem") {
		t.Errorf("%+v %v", l, err)
	}
}

// gptDisk is a GPT disk with both loaders, in memory, and where its
// headers are.
func gptDisk(t *testing.T) []byte {
	t.Helper()
	path, _ := bootdisktest.Make(t, t.TempDir(), bootdisktest.Disk{Label: "gpt", BootCode: true, BIOSBoot: true, ESP: true, Loaders: []string{"BOOTX64.EFI"}})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resum recomputes the CRC32s of the header at lba and of its entries,
// as a tool that wrote a bad table would have.
func resum(b []byte, lba int64) {
	if (lba+1)*sector > int64(len(b)) {
		return
	}
	h := b[lba*sector : (lba+1)*sector]
	ent, size := binary.LittleEndian.Uint64(h[72:80]), uint64(len(b))
	n := uint64(binary.LittleEndian.Uint32(h[80:84])) * uint64(binary.LittleEndian.Uint32(h[84:88]))
	if ent < size/sector && n <= size-ent*sector {
		binary.LittleEndian.PutUint32(h[88:92], crc32.ChecksumIEEE(b[ent*sector:ent*sector+n]))
	}
	binary.LittleEndian.PutUint32(h[16:20], 0)
	binary.LittleEndian.PutUint32(h[16:20], crc32.ChecksumIEEE(h[:92]))
}

// Damaged and hostile tables: the backup GPT stands in for a damaged
// primary; beyond that, a clear error or no loader.
func TestDamagedTables(t *testing.T) {
	good := gptDisk(t)
	last := int64(len(good))/sector - 1
	detectBytes := func(b []byte) (Loaders, error) {
		return DetectFrom(context.Background(), bytes.NewReader(b), int64(len(b)), t.TempDir())
	}
	both := func(fn func(b []byte, lba int64)) []byte {
		b := bytes.Clone(good)
		fn(b, 1)
		fn(b, last)
		return b
	}
	for _, tc := range []struct {
		what string
		disk []byte
		tag  string // "" for an error
		want string // in the error or the notes
	}{
		{"a primary header with a bad CRC: the backup is used", func() []byte { b := bytes.Clone(good); b[sector+60] ^= 1; return b }(), TagBoth, ""},
		{"both headers with bad CRCs", both(func(b []byte, lba int64) { b[lba*sector+60] ^= 1 }), "", "does not match its CRC32"},
		{"both entry arrays with bad CRCs", both(func(b []byte, lba int64) {
			binary.LittleEndian.PutUint32(b[lba*sector+88:], 1)
			binary.LittleEndian.PutUint32(b[lba*sector+16:], 0)
			binary.LittleEndian.PutUint32(b[lba*sector+16:], crc32.ChecksumIEEE(b[lba*sector:lba*sector+92]))
		}), "", "entries do not match"},
		{"an absurd entry count", both(func(b []byte, lba int64) {
			binary.LittleEndian.PutUint32(b[lba*sector+80:], 0xFFFFFFFF)
			resum(b, lba)
		}), "", "more than any disk has"},
		{"entries past the end of the disk", both(func(b []byte, lba int64) {
			binary.LittleEndian.PutUint64(b[lba*sector+72:], uint64(last))
			resum(b, lba)
		}), "", "past the end of the disk"},
		{"the ESP reaching past the end: ignored", both(func(b []byte, lba int64) {
			h := b[lba*sector:]
			e := b[int64(binary.LittleEndian.Uint64(h[72:80]))*sector+128:] // entry 2, the ESP
			binary.LittleEndian.PutUint64(e[40:48], uint64(last+100))
			resum(b, lba)
		}), TagBIOS, "outside the disk: partition 2"},
		{"a disk cut after its primary table", good[:40*sector], "", "the GPT is damaged"},
		{"a disk cut inside its MBR", good[:300], TagNone, "too short"},
		{"an empty disk", nil, TagNone, "too short"},
		{"a FAT boot sector, not an MBR", func() []byte {
			b := make([]byte, 1<<20)
			copy(b, bootdisktest.BootCode)
			b[446], b[510], b[511] = 0x41, 0x55, 0xAA
			return b
		}(), TagNone, "no MBR partition table"},
	} {
		l, err := detectBytes(tc.disk)
		switch {
		case tc.tag == "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %+v %v, want an error saying %q", tc.what, l, err, tc.want)
		case tc.tag != "" && (err != nil || l.Tag() != tc.tag || !strings.Contains(l.BIOSNote+l.UEFINote, tc.want)):
			t.Errorf("%s: %+v %v, want %s saying %q", tc.what, l, err, tc.tag, tc.want)
		}
	}
}

// A cancelled context stops detection.
func TestDetectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DetectFrom(ctx, bytes.NewReader(gptDisk(t)), 1<<30, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// A disk that is not there is an error.
func TestDetectMissing(t *testing.T) {
	if _, err := Detect(context.Background(), "/nonexistent/disk"); err == nil {
		t.Error("no error")
	}
}
