package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// enterRoot makes root this namespace's / with pivot_root and detaches the
// old root, so nothing of the host's tree stays reachable. The image's own
// submounts (its private /dev and devpts, files the bake bound in) come
// along with a recursive bind; the procfs and sysfs that came along belong
// to the bake's namespaces and are replaced by mountPseudo.
func enterRoot(root string) error {
	// Nothing done here may propagate back to the bake's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind the image root: %w", err)
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir to the image root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one, where
	// it can be detached without a directory for it in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into the image: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// mountPseudo mounts a procfs of the new PID namespace and a read-only
// sysfs of the new network namespace over the bake's, makes the parts of
// /proc that reach the kernel read-only and hides those that leak the
// host's memory or keys. Everything after pivot_root resolves inside the
// image, so a symlink planted there can only point back into the image.
func mountPseudo() error {
	const nx = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, d := range []string{"/proc", "/sys"} {
		if err := os.MkdirAll(d, 0o555); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
		// Not mounted (a bare image) is fine: EINVAL.
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("detach the bake's %s: %w", d, err)
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", nx, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", nx|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount /sys: %w", err)
	}
	// The kernel's tunables and bus/irq controls: read-only, as in
	// docker/nspawn (a script may read sysctls, never set the host's).
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"} {
		if err := readOnly(p); err != nil {
			return err
		}
	}
	// Host memory, the kernel's timers and keys: /dev/null over them.
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kallsyms"} {
		if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// readOnly bind-mounts p onto itself read-only; a p this kernel lacks is
// skipped.
func readOnly(p string) error {
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", p, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("", p, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	return nil
}

// setupNet names the new UTS namespace and, in a new network namespace,
// brings loopback up: package code may talk to itself, nothing else.
func setupNet(s Spec) error {
	name := s.Hostname
	if name == "" {
		name = "localhost"
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if s.Network {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}
