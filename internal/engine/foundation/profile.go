package foundation

import (
	"fmt"
	"os"
	"strings"
)

// The profiles.
const (
	// ProfileCloud is an image EC2 (and any VM with a metadata service or
	// a NoCloud seed) can launch and a person can log into, as Debian's own
	// cloud images: the cloud kernel, GRUB for both firmware types,
	// cloud-init, openssh-server, DHCP on the first NIC, growroot.
	ProfileCloud = "cloud"
	// ProfileMinimal is a pristine Debian: minbase, a kernel, no loader
	// (booted by the boot test's direct kernel boot), no way in.
	ProfileMinimal = "minimal"
)

// DefaultUser is the login the cloud profile gives cloud-init, as Debian's
// cloud images do.
const DefaultUser = "admin"

// packages are what the profile installs beyond minbase and ca-certificates.
func packages(o Options) []string {
	arch := debArch[o.Arch]
	if !o.Kernel {
		return nil
	}
	if o.Profile == ProfileMinimal {
		pkgs := []string{kernelPkg[arch], "systemd-sysv", "udev", "initramfs-tools"}
		if o.Layout == "uefi" {
			pkgs = append(pkgs, "systemd-boot-efi")
		}
		return pkgs
	}
	kernel := "linux-image-cloud-" + arch
	pkgs := []string{kernel, "systemd-sysv", "udev", "initramfs-tools",
		// how EC2 reaches the instance, and it the instance's metadata
		"cloud-init", "cloud-guest-utils", "openssh-server", "sudo",
		"systemd-resolved", "systemd-timesyncd", "amazon-ec2-utils"}
	switch o.Layout {
	case "hybrid":
		// The -bin packages only: their modules and images, no maintainer
		// script that writes to a disk and no update-grub (grub.go).
		pkgs = append(pkgs, "grub-pc-bin", "grub-efi-"+arch+"-bin")
	case "grub-uefi":
		pkgs = append(pkgs, "grub-efi-"+arch+"-bin")
	case "uefi":
		pkgs = append(pkgs, "systemd-boot-efi")
	}
	return pkgs
}

// customizeHooks are mmdebstrap's commands run in the finished tree.
func customizeHooks(o Options) []string {
	if o.Profile != ProfileCloud || !o.Kernel {
		return nil
	}
	hooks := []string{`chroot "$1" systemctl enable --quiet systemd-networkd.service`}
	if grubLayout(o.Layout) {
		hooks = append(hooks, `printf '%s\n' '`+strings.Join(grubDebconf(debArch[o.Arch], o.Layout == "hybrid"), `' '`)+`' | chroot "$1" debconf-set-selections`)
	}
	return hooks
}

// grubDebconf are debconf's answers for GRUB's packages, which the hybrid
// layout does not install (grub.go) but a bake or an instance may. No
// install device, and that is fine: grub-pc's maintainer scripts then
// neither ask for one nor fail for the lack of one, and write to no disk
// (the disk's loaders are aminator's). An EFI grub-install, where one
// runs, keeps the removable-media loader, which an EC2 instance boots by,
// in step with the modules it copies to /boot/grub, and leaves the NVRAM
// alone: a new instance's is empty anyway.
// grub-pc's answers only where the disk has a BIOS loader (bios).
func grubDebconf(arch string, bios bool) []string {
	efi := "grub-efi-" + arch
	var lines []string
	if bios {
		lines = []string{
			"grub-pc grub-pc/install_devices multiselect",
			"grub-pc grub-pc/install_devices_empty boolean true",
		}
	}
	return append(lines,
		efi+" grub2/update_nvram boolean false",
		efi+" grub2/force_efi_extra_removable boolean true")
}

// cloudFiles are the cloud profile's configuration, by path in the tree.
func cloudFiles(arch string) map[string]string {
	return map[string]string{
		"etc/cloud/cloud.cfg.d/01_aminator.cfg": cloudInitConfig,
		// DHCP (IPv4 and IPv6) on every ethernet device, whatever its name
		// (ens5, enX0, eth0, ...): EC2's first NIC has no fixed name.
		"etc/systemd/network/90-aminator-dhcp.network": "# written by aminator: DHCP on every ethernet NIC, whatever it is named\n" +
			"[Match]\nType=ether\nName=!veth* docker*\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\n\n[DHCPv4]\nUseMTU=yes\n",
		// Should a bake install grub2-common, the instance's later
		// update-grub writes Debian's grub.cfg: give it the same consoles.
		"etc/default/grub.d/50-aminator.cfg": grubDefaults(arch),
		// The Amazon Time Sync Service; Debian's pool stays the fallback.
		"etc/systemd/timesyncd.conf.d/aminator-ec2.conf": "# written by aminator: the Amazon Time Sync Service\n[Time]\nNTP=169.254.169.123 fd00:ec2::123\n",
	}
}

// grubDefaults is /etc/default/grub.d's file: the same kernel command line
// and consoles for update-grub on an instance. On arm64 the firmware's
// console is GRUB's (EFI's console, no 8250 serial port to name).
func grubDefaults(arch string) string {
	s := "# written by aminator: the cloud kernel's command line, for update-grub on an instance\n" +
		"GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"" + strings.TrimPrefix(kernelCmdline(arch), "ro ") + "\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\n"
	if arch == "arm64" {
		return s + "GRUB_TERMINAL=console\n"
	}
	return s + "GRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial --speed=115200\"\n"
}

// cloudInitConfig makes cloud-init read EC2's metadata (NoCloud elsewhere),
// create Debian's default user with the key it finds, and leave the network
// to systemd-networkd, so an image boots the same with or without it.
const cloudInitConfig = `# written by aminator
datasource_list: [ Ec2, NoCloud, None ]
system_info:
  default_user:
    name: ` + DefaultUser + `
    lock_passwd: true
    gecos: Debian
    groups: [adm, audio, cdrom, dialout, dip, floppy, netdev, plugdev, sudo, video]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
ssh_pwauth: false
disable_root: true
network:
  config: disabled
apt_preserve_sources_list: true
`

// writeCloudFiles writes the cloud profile's files into the tree and keeps
// resolv.conf pointing at systemd-resolved's stub.
func writeCloudFiles(root *os.Root, arch string) error {
	for rel, content := range cloudFiles(arch) {
		if err := mkdirAllRoot(root, rel[:strings.LastIndex(rel, "/")]); err != nil {
			return err
		}
		root.Remove(rel)
		if err := root.WriteFile(rel, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write /%s: %w", rel, err)
		}
	}
	root.Remove("etc/resolv.conf")
	if err := root.Symlink("../run/systemd/resolve/stub-resolv.conf", "etc/resolv.conf"); err != nil {
		return fmt.Errorf("link /etc/resolv.conf: %w", err)
	}
	return nil
}

func mkdirAllRoot(root *os.Root, dir string) error {
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir /%s: %w", dir, err)
	}
	return nil
}
