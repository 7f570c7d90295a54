package foundation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

// bootPartition makes the uefi layout's EFI system partition.
type bootPartition struct{ b *builder }

// uefi says the layout boots by firmware, from an EFI system partition.
func (b *builder) uefi(*bake.State) bool { return b.o.Layout == "uefi" }

func (bootPartition) Name() string { return "boot partition" }

// bootLoaders makes a GRUB layout's loaders: GRUB for UEFI, and for BIOS
// on hybrid.
type bootLoaders struct{ b *builder }

// grub says the layout boots with GRUB (hybrid or grub-uefi).
func (b *builder) grub(*bake.State) bool { return grubLayout(b.o.Layout) }

func (bootLoaders) Name() string { return "boot loaders" }

func (st bootLoaders) Run(ctx context.Context, s *bake.State) error {
	b := st.b
	return b.host.InstallGRUB(ctx, b.o, s.Device, b.tree, b.uuid, b.espID, filepath.Join(b.work, "grub"))
}

func (st bootPartition) Run(ctx context.Context, s *bake.State) error {
	b := st.b
	return b.host.MakeESP(ctx, s.Device, b.tree, b.kernel, b.uuid, b.espID, filepath.Join(b.work, "esp"))
}

// mkfsVFAT makes an EFI system partition's FAT32 with the serial espID;
// a reproducible foundation's with --invariant, which gives the volume
// label's directory entry dosfstools' fixed time instead of the clock's
// (mkfs.vfat reads no SOURCE_DATE_EPOCH; mtools, which writes the rest,
// does). --invariant also sets a fixed serial: -i must come after it.
func (m machine) mkfsVFAT(ctx context.Context, espID, target string) error {
	args := []string{"mkfs.vfat"}
	if m.epoch != nil {
		args = append(args, "--invariant")
	}
	return m.run(ctx, append(args, "-F", "32", "-n", "ESP", "-i", espID, target)...)
}

// makeESP makes the EFI system partition (partition 1): FAT32 with
// systemd-boot as the default loader, the kernel and initrd, and one boot
// entry for the root filesystem by UUID. mtools writes into it, so no FAT
// driver is needed on the host (this project's machines have none).
func makeESP(ctx context.Context, m machine, dev, tree, kernel, rootUUID, espID, work string) error {
	target, release, err := partition.Open(ctx, dev, 1)
	if err != nil {
		return err
	}
	defer release()
	if err := m.mkfsVFAT(ctx, espID, target); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	entry := fmt.Sprintf("title Debian (aminator)\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=UUID=%s rw console=tty0 console=ttyS0\n", rootUUID)
	for name, content := range map[string]string{"loader.conf": "default debian.conf\ntimeout 0\n", "debian.conf": entry} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := m.run(ctx, "mmd", "-i", target, "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader", "::/loader/entries"); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	loader := filepath.Join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	for _, c := range [][2]string{ // from, to in the ESP
		{loader, "::/EFI/BOOT/BOOTX64.EFI"},
		{loader, "::/EFI/systemd/systemd-bootx64.efi"},
		{filepath.Join(tree, "boot", "vmlinuz-"+kernel), "::/vmlinuz"},
		{filepath.Join(tree, "boot", "initrd.img-"+kernel), "::/initrd.img"},
		{filepath.Join(work, "loader.conf"), "::/loader/loader.conf"},
		{filepath.Join(work, "debian.conf"), "::/loader/entries/debian.conf"},
	} {
		if err := m.run(ctx, "mcopy", "-i", target, c[0], c[1]); err != nil {
			return fmt.Errorf("boot partition: %w", err)
		}
	}
	return nil
}
