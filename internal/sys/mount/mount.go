// Package mount mounts and unmounts filesystems for a bake: it detects the
// filesystem type from its superblock, mounts onto directories opened
// without following symlinks, and unmounts with retries, naming the
// processes that still hold a mount when it stays busy.
package mount

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DetectFS reads the superblock of dev and names its filesystem type.
func DetectFS(dev string) (string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return "", fmt.Errorf("detect filesystem on %s: %w", dev, err)
	}
	defer f.Close()
	buf := make([]byte, 0x10040+8)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	switch {
	case len(buf) >= 4 && string(buf[0:4]) == "XFSB":
		return "xfs", nil
	case len(buf) >= 0x10048 && string(buf[0x10040:0x10048]) == "_BHRfS_M":
		return "btrfs", nil
	case len(buf) >= 1082 && buf[1080] == 0x53 && buf[1081] == 0xEF:
		return "ext4", nil // ext2/3 mount as ext4 too
	}
	if len(buf) >= 1028 && bytes.Equal(buf[1024:1028], []byte{0xe2, 0xe1, 0xf5, 0xe0}) {
		return "erofs", nil
	}
	return "", fmt.Errorf("detect filesystem on %s: no ext4, xfs or btrfs superblock found (is it partitioned? try --partition)", dev)
}

// Mount mounts source on target (a host path created by the caller).
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

// MountAt mounts onto an already opened directory (opened without
// following symlinks), so a symlink planted in an image cannot redirect a
// mount onto the host.
func MountAt(source string, dir *os.File, display, fstype string, flags uintptr, data string) error {
	target := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd()))
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, display, fstype, err)
	}
	return nil
}

// Unmount unmounts target, retrying while it is busy. Before each retry it
// asks the optional end func to stop what holds it. When it gives up, the
// error names the holders.
func Unmount(ctx context.Context, target string, end func() error) error {
	delay := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // EINVAL: not a mount point (already gone)
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		if end != nil {
			end()
		}
		select {
		case <-ctx.Done():
			attempt = 8
		case <-time.After(delay):
		}
		delay *= 2
	}
	holders := Holders(target)
	if len(holders) == 0 {
		return fmt.Errorf("unmount %s: still busy after retries (no process found: a mount below it, or a kernel user such as a loop device)", target)
	}
	return fmt.Errorf("unmount %s: still busy after retries, held by %s", target, strings.Join(holders, "; "))
}

// Holders names the processes whose root, working directory, open files or
// memory maps are under dir.
func Holders(dir string) []string {
	dir = filepath.Clean(dir)
	under := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	var out []string
	for _, pid := range otherPIDs() {
		base := "/proc/" + strconv.Itoa(pid)
		var why []string
		for _, l := range []string{"root", "cwd", "exe"} {
			if t, err := os.Readlink(base + "/" + l); err == nil && under(t) {
				why = append(why, l+" "+t)
			}
		}
		if fds, err := os.ReadDir(base + "/fd"); err == nil {
			for _, fd := range fds {
				if t, err := os.Readlink(base + "/fd/" + fd.Name()); err == nil && under(t) {
					why = append(why, "open "+t)
					break
				}
			}
		}
		if len(why) > 0 {
			comm, _ := os.ReadFile(base + "/comm")
			out = append(out, fmt.Sprintf("pid %d (%s): %s", pid, strings.TrimSpace(string(comm)), strings.Join(why, ", ")))
		}
	}
	return out
}

// ProcessesRootedAt lists the pids whose root directory is dir (processes
// running inside a chroot there).
func ProcessesRootedAt(dir string) []int {
	dir = filepath.Clean(dir)
	var out []int
	for _, pid := range otherPIDs() {
		if t, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/root"); err == nil && (t == dir || strings.HasPrefix(t, dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}

// otherPIDs lists every process but this one.
func otherPIDs() []int {
	procs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []int
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && pid != self {
			out = append(out, pid)
		}
	}
	return out
}

// Under lists the mount points at or below dir, deepest first.
func Under(dir string) ([]string, error) {
	all, err := Points()
	dir = filepath.Clean(dir)
	var out []string
	for _, mp := range all {
		if mp == dir || dir == "/" || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, err
}

// Points lists this mount namespace's mount points, in mountinfo's order
// (a parent before what is mounted on it).
func Points() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 5 {
			out = append(out, unescape(fields[4]))
		}
	}
	return out, s.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// WaitUnused waits until nothing holds the block device dev exclusively
// or mounted, in any mount namespace: an exclusive open succeeds only
// then. A filesystem unmounted here but still mounted in a namespace a
// process copied lives on, its journal not yet written and its last
// writes perhaps not either. It gives up after timeout, or when ctx ends.
func WaitUnused(ctx context.Context, dev string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if err == nil {
			return unix.Close(fd)
		}
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO) {
			return nil // the device is gone, and what it held with it
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("check %s is unused: %w", dev, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still in use %s after its unmount: mounted in another mount namespace (a process still exiting?) or held by another device", dev, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to be unused: %w", dev, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
