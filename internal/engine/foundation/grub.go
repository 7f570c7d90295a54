package foundation

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/sys/partition"
)

// The hybrid layout is Debian's cloud disk for x86_64: one GPT that both
// of EC2's boot modes boot with GRUB. Partition 14 is a BIOS boot
// partition holding GRUB's core image (the MBR's boot code jumps to it),
// 15 the EFI system partition holding GRUB's EFI image as the
// removable-media loader, and 1, last on the disk so that it can grow, the
// root filesystem with /boot/grub/grub.cfg and GRUB's modules. The
// grub-uefi layout is the same disk without the BIOS boot partition, as
// Debian's arm64 cloud disk: Graviton boots through UEFI only, and its
// removable-media loader is \EFI\BOOT\BOOTAA64.EFI.
//
// Nothing here runs grub-install: it probes devices, which a loop device
// without partition nodes cannot satisfy, and it would install the host's
// GRUB. grub-mkimage (the host's grub-common, which builds images of any
// platform from that platform's modules) assembles the images from the
// tree's own modules, and the two sectors grub-bios-setup would patch are
// written here (biosBoot). grub.cfg boots /vmlinuz and /initrd.img, the
// links Debian's kernel packages keep on the newest kernel, so a bake that
// installs a kernel needs no update-grub.
const (
	biosBootPart = 14
	espPart      = 15
	rootPart     = 1
	biosBootType = "21686148-6449-6E6F-744E-656564454649"
)

// grubModules are built into each image: enough to find the root
// filesystem by UUID; the rest (normal, linux, ...) load from it.
var grubModules = map[string][]string{
	"i386-pc":    {"biosdisk", "part_gpt", "part_msdos", "ext2", "xfs", "search", "search_fs_uuid"},
	"x86_64-efi": {"part_gpt", "part_msdos", "ext2", "xfs", "fat", "search", "search_fs_uuid"},
	"arm64-efi":  {"part_gpt", "part_msdos", "ext2", "xfs", "fat", "search", "search_fs_uuid"},
}

// efiLoader is each architecture's GRUB platform for UEFI and the names
// of its removable-media loader and of Debian's own copy.
var efiLoader = map[string]struct{ platform, removable, debian string }{
	"x86_64": {"x86_64-efi", "BOOTX64.EFI", "grubx64.efi"},
	"arm64":  {"arm64-efi", "BOOTAA64.EFI", "grubaa64.efi"},
}

// grubLayout says the layout boots with aminator's GRUB.
func grubLayout(layout string) bool { return layout == "hybrid" || layout == "grub-uefi" }

// hasESP says the layout's disk has an EFI system partition.
func hasESP(layout string) bool { return layout == "uefi" || grubLayout(layout) }

// grubPlatforms are the GRUB platforms whose modules a layout's disk
// needs: UEFI's for the architecture, and the BIOS's on hybrid.
func grubPlatforms(arch, layout string) []string {
	p := []string{efiLoader[arch].platform}
	if layout == "hybrid" {
		p = append(p, "i386-pc")
	}
	return p
}

// kernelCmdline is the cloud kernel's. On x86_64: both consoles, EC2's
// serial last so it gets /dev/console. On arm64 no console is named: the
// kernel takes the firmware's serial console (ACPI's SPCR table, or the
// device tree's stdout-path), which is ttyS0 on Graviton and ttyAMA0 on
// qemu's virt machine, and naming one would leave the other without
// /dev/console.
func kernelCmdline(arch string) string {
	if arch == "arm64" {
		return "ro earlycon consoleblank=0"
	}
	return "ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0"
}

// grubConfig is /boot/grub/grub.cfg: no menu wait, serial and screen (on
// arm64 the firmware's console, which is its serial console).
func grubConfig(rootUUID, arch string) string {
	term := "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n"
	if arch == "arm64" {
		term = "terminal_input console\nterminal_output console\n"
	}
	return fmt.Sprintf(`# written by aminator: boots /vmlinuz, which Debian's kernel packages keep current
set timeout=0
%[3]sinsmod part_gpt
insmod ext2
insmod xfs
search --no-floppy --fs-uuid --set=root %[1]s
menuentry 'Debian GNU/Linux' {
	linux /vmlinuz root=UUID=%[1]s %[2]s
	initrd /initrd.img
}
`, rootUUID, kernelCmdline(arch), term)
}

// earlyConfig is built into each image: it finds the root filesystem and
// hands over to the normal mode, which reads grub.cfg there.
func earlyConfig(rootUUID string) string {
	return fmt.Sprintf("search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n", rootUUID)
}

// prepareGRUB writes grub.cfg and GRUB's modules into the tree, where
// the images built by installGRUB look for them.
func prepareGRUB(tree, rootUUID, arch, layout string) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := mkdirAllRoot(root, "boot/grub"); err != nil {
		return err
	}
	if err := root.WriteFile("boot/grub/grub.cfg", []byte(grubConfig(rootUUID, arch)), 0o644); err != nil {
		return fmt.Errorf("write /boot/grub/grub.cfg: %w", err)
	}
	for _, platform := range grubPlatforms(arch, layout) {
		if err := copyModules(root, platform); err != nil {
			return err
		}
	}
	return nil
}

// copyModules copies usr/lib/grub/PLATFORM's modules and lists to
// boot/grub/PLATFORM, as grub-install does.
func copyModules(root *os.Root, platform string) error {
	src, dst := "usr/lib/grub/"+platform, "boot/grub/"+platform
	names, err := filepath.Glob(filepath.Join(root.Name(), src, "*"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("the tree has no GRUB modules in /%s (grub-pc-bin, grub-efi-amd64-bin or grub-efi-arm64-bin)", src)
	}
	if err := mkdirAllRoot(root, dst); err != nil {
		return err
	}
	for _, n := range names {
		base := filepath.Base(n)
		if ext := filepath.Ext(base); ext != ".mod" && ext != ".lst" {
			continue
		}
		b, err := root.ReadFile(src + "/" + base)
		if err != nil {
			return fmt.Errorf("copy GRUB module: %w", err)
		}
		if err := root.WriteFile(dst+"/"+base, b, 0o644); err != nil {
			return fmt.Errorf("copy GRUB module: %w", err)
		}
	}
	return nil
}

// installGRUB makes the layout's loaders: the EFI system partition with
// GRUB as the architecture's removable-media loader and, on hybrid,
// GRUB's core image in the BIOS boot partition with the MBR's boot code
// pointing at it.
func installGRUB(ctx context.Context, m machine, dev, tree, rootUUID, espID, work, arch, layout string) error {
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	early := filepath.Join(work, "early.cfg")
	if err := os.WriteFile(early, []byte(earlyConfig(rootUUID)), 0o644); err != nil {
		return err
	}
	efi, core := filepath.Join(work, efiLoader[arch].debian), filepath.Join(work, "core.img")
	for _, platform := range grubPlatforms(arch, layout) {
		out := efi
		if platform == "i386-pc" {
			out = core
		}
		args := append([]string{"-O", platform, "-d", filepath.Join(tree, "usr/lib/grub", platform),
			"-o", out, "-c", early, "-p", "/boot/grub"}, grubModules[platform]...)
		if err := m.run(ctx, append([]string{"grub-mkimage"}, args...)...); err != nil {
			return fmt.Errorf("grub-mkimage %s: %w", platform, err)
		}
	}
	if err := makeGRUBESP(ctx, m, dev, efi, espID, arch); err != nil {
		return err
	}
	if layout != "hybrid" {
		return nil
	}
	return biosBoot(dev, filepath.Join(tree, "usr/lib/grub/i386-pc/boot.img"), core)
}

// makeGRUBESP formats the EFI system partition and copies GRUB in, as the
// removable-media path that firmware boots without NVRAM entries (an EC2
// instance has none for a new image) and as Debian's own path.
func makeGRUBESP(ctx context.Context, m machine, dev, efi, espID, arch string) error {
	target, release, err := partition.Open(ctx, dev, espPart)
	if err != nil {
		return err
	}
	defer release()
	if err := m.mkfsVFAT(ctx, espID, target); err != nil {
		return err
	}
	if err := m.run(ctx, "mmd", "-i", target, "::/EFI", "::/EFI/BOOT", "::/EFI/debian"); err != nil {
		return fmt.Errorf("EFI system partition: %w", err)
	}
	l := efiLoader[arch]
	for _, to := range []string{"::/EFI/BOOT/" + l.removable, "::/EFI/debian/" + l.debian} {
		if err := m.run(ctx, "mcopy", "-i", target, efi, to); err != nil {
			return fmt.Errorf("EFI system partition: %w", err)
		}
	}
	return nil
}

// Offsets in GRUB's boot.img and diskboot.img (grub's
// include/grub/i386/pc/boot.h), which grub-bios-setup patches.
const (
	bootKernelSector = 0x5c  // LBA of core.img's first sector, 8 bytes
	bootDriveCheck   = 0x66  // a jump over the drive check: two NOPs for a hard disk
	mbrCodeSize      = 0x1b8 // boot code; the disk signature and table follow
	blocklistOffset  = 512 - 12
)

// biosBoot writes core.img into the BIOS boot partition and boot.img's
// code into the MBR, keeping the protective partition table.
func biosBoot(dev, bootImg, coreImg string) error {
	p, err := partition.Find(dev, biosBootPart)
	if err != nil {
		return err
	}
	core, err := os.ReadFile(coreImg)
	if err != nil {
		return err
	}
	boot, err := os.ReadFile(bootImg)
	if err != nil {
		return fmt.Errorf("GRUB's boot.img: %w", err)
	}
	if len(boot) != 512 || len(core) < 1024 {
		return fmt.Errorf("GRUB images of unexpected size (boot.img %d, core.img %d bytes)", len(boot), len(core))
	}
	if int64(len(core)) > p.Size {
		return fmt.Errorf("GRUB's core image (%d bytes) does not fit the BIOS boot partition (%d bytes)", len(core), p.Size)
	}
	first := uint64(p.Start / 512)
	sectors := (len(core) + 511) / 512
	// diskboot.img's blocklist: the rest of core.img, right after it.
	binary.LittleEndian.PutUint64(core[blocklistOffset:], first+1)
	binary.LittleEndian.PutUint16(core[blocklistOffset+8:], uint16(sectors-1))
	binary.LittleEndian.PutUint64(boot[bootKernelSector:], first)
	boot[bootDriveCheck], boot[bootDriveCheck+1] = 0x90, 0x90
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(core, p.Start); err != nil {
		return fmt.Errorf("write GRUB's core image: %w", err)
	}
	if _, err := f.WriteAt(boot[:mbrCodeSize], 0); err != nil {
		return fmt.Errorf("write the MBR's boot code: %w", err)
	}
	return f.Sync()
}
