package foundation

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/mount"
	"github.com/aminator-go/aminator/internal/partition"
)

// GPT partition types.
const (
	linuxFS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
)

// makeESP makes the EFI system partition (partition 1): FAT32 with
// systemd-boot as the default loader, the kernel and initrd, and one boot
// entry for the root filesystem by UUID. mtools writes into it, so no FAT
// driver is needed on the host (this project's machines have none).
func makeESP(ctx context.Context, dev, tree, kernel, rootUUID, espID, work string, log *slog.Logger) error {
	target, release, err := partition.Open(ctx, dev, 1)
	if err != nil {
		return err
	}
	defer release()
	if err := logging.Host(ctx, log, "mkfs.vfat", "-F", "32", "-n", "ESP", "-i", espID, target); err != nil {
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
	if err := logging.Host(ctx, log, "mmd", "-i", target, "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader", "::/loader/entries"); err != nil {
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
		if err := logging.Host(ctx, log, "mcopy", "-i", target, c[0], c[1]); err != nil {
			return fmt.Errorf("boot partition: %w", err)
		}
	}
	return nil
}

func makeFS(ctx context.Context, fstype, uuid, tree, target, mnt string, log *slog.Logger) error {
	switch fstype {
	case "ext4":
		// -d populates the filesystem from the tree: no mount, no copy.
		return logging.Host(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-d", tree, target)
	case "xfs":
		if err := logging.Host(ctx, log, "mkfs.xfs", "-q", "-f", "-L", "root", "-m", "uuid="+uuid, target); err != nil {
			return err
		}
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return err
		}
		if err := mount.Mount(target, mnt, "xfs", 0, "nouuid"); err != nil {
			return err
		}
		defer mount.Unmount(context.WithoutCancel(ctx), mnt, nil)
		return logging.Host(ctx, log, "cp", "-a", "--sparse=always", tree+"/.", mnt+"/")
	}
	return fmt.Errorf("filesystem %q", fstype)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
