// Package bootdisk tells, from a disk's own bytes, which firmware can boot
// it, so that an image is never registered on EC2 with a boot mode its disk
// cannot boot: EC2 starts an instance through legacy BIOS or UEFI firmware
// and the disk's own boot loader, never through the image's kernel.
//
//   - Legacy BIOS boots a disk whose MBR holds boot code (its first 440
//     bytes are not all zero) and whose partition table lets that code
//     find the rest of its loader: a GPT with a BIOS boot partition (where
//     GRUB keeps its core) or a partition marked legacy-BIOS-bootable, or
//     an MBR partition table. A whole-disk filesystem has no loader.
//   - UEFI boots a disk with a GPT EFI system partition whose FAT holds the
//     removable-media loader of the instance's architecture,
//     \EFI\BOOT\BOOTX64.EFI (x86_64) or \EFI\BOOT\BOOTAA64.EFI (arm64).
//
// Detect reads a disk image or block device (DetectFrom any io.ReaderAt,
// such as a local snapshot read through its store) and never trusts a tag
// or a registered boot mode; Mode picks the boot mode to register, or
// refuses with the loader that is missing; Loaders.Tag is the image's boot
// tag.
//
// Every byte read is untrusted. The MBR and the GPT are parsed here: the
// GPT's header and entry array must match their CRC32s (the backup header
// at the disk's end is used when the primary is damaged), entry counts and
// sizes are bounded, and partitions outside the disk are ignored; a
// truncated or damaged disk gives a clear error or "no loader", never a
// panic (FuzzDetect). Sectors are 512 bytes, as EBS volumes present them.
//
// The FAT of an EFI system partition is read by mtools' mdir (a host
// requirement of UEFI foundations already), which reads FAT12, FAT16 and
// FAT32, long names and their case, and needs no mount: the Go FAT readers
// there are read FAT32 only or are no longer maintained, and a FAT reader
// of our own would be more code to trust than the one line mdir prints.
package bootdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Loaders are the boot loaders a disk carries.
type Loaders struct {
	// BIOS says legacy BIOS firmware can boot the disk.
	BIOS bool `json:"bios"`
	// UEFI says the disk has an EFI system partition with a
	// removable-media loader, for the architectures in UEFIArchs.
	UEFI      bool     `json:"uefi"`
	UEFIArchs []string `json:"uefi_archs,omitempty"`
	// BIOSNote and UEFINote say why a loader is missing.
	BIOSNote string `json:"bios_note,omitempty"`
	UEFINote string `json:"uefi_note,omitempty"`
}

// The values of an image's boot tag (Loaders.Tag).
const (
	TagBoth = "bios+uefi"
	TagUEFI = "uefi"
	TagBIOS = "legacy-bios"
	TagNone = "none"
)

// Tag is the value of the boot tag that records the loaders: bios+uefi,
// uefi (UEFI only), legacy-bios or none.
func (l Loaders) Tag() string {
	switch {
	case l.BIOS && l.UEFI:
		return TagBoth
	case l.UEFI:
		return TagUEFI
	case l.BIOS:
		return TagBIOS
	}
	return TagNone
}

// String is the tag with the UEFI architectures, for logs.
func (l Loaders) String() string {
	if l.UEFI {
		return l.Tag() + " (" + strings.Join(l.UEFIArchs, ", ") + ")"
	}
	return l.Tag()
}

// HasUEFI says the disk has a UEFI loader for arch.
func (l Loaders) HasUEFI(arch string) bool {
	return l.UEFI && slices.Contains(l.UEFIArchs, normArch(arch))
}

// Detect reads the disk image or block device at path.
func Detect(ctx context.Context, path string) (Loaders, error) {
	f, err := os.Open(path)
	if err != nil {
		return Loaders{}, fmt.Errorf("boot loaders: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Loaders{}, fmt.Errorf("boot loaders of %s: %w", path, err)
	}
	l, err := detect(ctx, f, size, func(ctx context.Context, p part) (espResult, error) {
		return mdirLoaders(ctx, path, p.start)
	})
	if err != nil {
		return l, fmt.Errorf("boot loaders of %s: %w", path, err)
	}
	return l, nil
}

// DetectFrom reads a disk of size bytes through r. An EFI system
// partition is copied (its data only, sparse) to a file in scratch for
// mdir, which is removed before DetectFrom returns.
func DetectFrom(ctx context.Context, r io.ReaderAt, size int64, scratch string) (Loaders, error) {
	l, err := detect(ctx, r, size, func(ctx context.Context, p part) (espResult, error) {
		return copiedESP(ctx, r, p, scratch)
	})
	if err != nil {
		return l, fmt.Errorf("boot loaders: %w", err)
	}
	return l, nil
}

// espFunc lists the loaders in an EFI system partition.
type espFunc func(ctx context.Context, p part) (espResult, error)

// espResult is what an EFI system partition holds: the architectures of
// its removable-media loaders, or why it has none.
type espResult struct {
	archs []string
	note  string
}

// detect reads the partition table of a disk of size bytes, then the
// loaders it allows.
func detect(ctx context.Context, r io.ReaderAt, size int64, esp espFunc) (Loaders, error) {
	if err := ctx.Err(); err != nil {
		return Loaders{}, err
	}
	t, err := readTable(r, size)
	if err != nil {
		return Loaders{}, err
	}
	var l Loaders
	l.BIOS, l.BIOSNote = t.bios()
	if l.UEFIArchs, l.UEFINote, err = t.uefi(ctx, esp); err != nil {
		return Loaders{}, err
	}
	l.UEFI = len(l.UEFIArchs) > 0
	return l, nil
}

// maxESPs is how many EFI system partitions are looked into.
const maxESPs = 4

// bios says whether legacy BIOS can boot the disk, or why not.
func (t *table) bios() (bool, string) {
	switch {
	case t.kind == "":
		return false, t.note
	case !t.bootCode:
		return false, "the MBR boot code (the disk's first 440 bytes) is all zero"
	case t.kind == "mbr":
		return true, ""
	}
	for _, p := range t.parts {
		if p.typ == typeBIOSBoot || p.attrs&attrLegacyBootable != 0 {
			return true, ""
		}
	}
	return false, "the GPT has no BIOS boot partition (type " + guidString(typeBIOSBoot) + ") for the MBR code to load GRUB from" + t.skippedNote()
}

// uefi lists the architectures of the removable-media loaders in the
// disk's EFI system partitions, or says why there are none.
func (t *table) uefi(ctx context.Context, esp espFunc) ([]string, string, error) {
	if t.kind != "gpt" {
		if t.kind == "" {
			return nil, t.note, nil
		}
		return nil, "an MBR partition table: no GPT, so no EFI system partition", nil
	}
	var archs, notes []string
	n := 0
	for _, p := range t.parts {
		if p.typ != typeESP || n == maxESPs {
			continue
		}
		n++
		res, err := esp(ctx, p)
		if err != nil {
			return nil, "", fmt.Errorf("EFI system partition %d: %w", p.num, err)
		}
		for _, a := range res.archs {
			if !slices.Contains(archs, a) {
				archs = append(archs, a)
			}
		}
		if res.note != "" {
			notes = append(notes, fmt.Sprintf("EFI system partition %d %s", p.num, res.note))
		}
	}
	slices.Sort(archs)
	switch {
	case len(archs) > 0:
		return archs, "", nil
	case n == 0:
		return nil, "the GPT has no EFI system partition (type " + guidString(typeESP) + ")" + t.skippedNote(), nil
	}
	return nil, strings.Join(notes, "; "), nil
}

// ErrCannotBoot is wrapped by every refusal of Mode; ErrNoLoader by those
// of a disk with no loader the architecture can use at all.
var (
	ErrCannotBoot = errors.New("the disk cannot boot in that mode")
	ErrNoLoader   = errors.New("the disk has no boot loader")
)
