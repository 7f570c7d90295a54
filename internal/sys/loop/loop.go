// Package loop attaches files (or block devices) as loop devices through
// the kernel's ioctls (LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD),
// without shelling out to losetup.
//
// Devices are attached with LO_FLAGS_AUTOCLEAR and the Device keeps a file
// descriptor open: the kernel detaches the device by itself once nothing
// (no mount, no descriptor) uses it, so a process that dies cannot leak one.
package loop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/flock"
)

// Options say how to attach.
type Options struct {
	Offset    uint64
	SizeLimit uint64 // 0: to the end
	ReadOnly  bool
	// LockPath, if set, serialises allocation between aminator processes.
	LockPath string
}

// Device is an attached loop device.
type Device struct {
	Path    string
	Number  int
	Backing string
	f       *os.File
}

// Attach attaches backing as a free loop device.
func Attach(ctx context.Context, backing string, o Options) (*Device, error) {
	flags := os.O_RDWR
	if o.ReadOnly {
		flags = os.O_RDONLY
	}
	bf, err := os.OpenFile(backing, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("loop attach %s: %w", backing, err)
	}
	defer bf.Close() // the kernel holds its own reference once configured
	if o.LockPath != "" {
		l, err := flock.Exclusive(ctx, o.LockPath)
		if err != nil {
			return nil, fmt.Errorf("loop attach %s: %w", backing, err)
		}
		defer l.Unlock()
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop attach %s: %w", backing, err)
	}
	defer ctl.Close()
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("loop attach %s: %w", backing, err)
		}
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop attach %s: get free device: %w", backing, err)
		}
		d, err := configure(n, bf, backing, o)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("loop attach %s to /dev/loop%d: %w", backing, n, err)
		}
		lastErr = err // someone else took it between GET_FREE and CONFIGURE
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return nil, fmt.Errorf("loop attach %s: no free device after retries: %w", backing, lastErr)
}

func configure(n int, bf *os.File, backing string, o Options) (*Device, error) {
	path := "/dev/loop" + strconv.Itoa(n)
	flags := os.O_RDWR
	if o.ReadOnly {
		flags = os.O_RDONLY
	}
	var f *os.File
	var err error
	for i := 0; i < 50; i++ { // udev/devtmpfs may need a moment to make the node
		f, err = os.OpenFile(path, flags, 0)
		if !errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	info := unix.LoopInfo64{Offset: o.Offset, Sizelimit: o.SizeLimit, Flags: unix.LO_FLAGS_AUTOCLEAR}
	if o.ReadOnly {
		info.Flags |= unix.LO_FLAGS_READ_ONLY
	}
	name := backing
	if len(name) >= len(info.File_name) {
		name = name[len(name)-len(info.File_name)+1:]
	}
	copy(info.File_name[:], name)
	cfg := unix.LoopConfig{Fd: uint32(bf.Fd()), Info: info}
	err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		// Kernels before 5.8 have no LOOP_CONFIGURE.
		if err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_FD, int(bf.Fd())); err == nil {
			if err = unix.IoctlLoopSetStatus64(int(f.Fd()), &info); err != nil {
				unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Device{Path: path, Number: n, Backing: backing, f: f}, nil
}

// Release closes this process's descriptor without detaching: with
// autoclear, the kernel detaches the device once whatever uses it (a
// mount) lets go.
func (d *Device) Release() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// Detach releases the device: an explicit clear, then the descriptor is
// closed. With autoclear set, a device still mounted is detached by the
// kernel as soon as it is unmounted. Safe to call twice.
func (d *Device) Detach() error {
	if d == nil || d.f == nil {
		return nil
	}
	// Write back what tools wrote through the device's page cache without
	// syncing (mtools does not) before the device goes away: into the
	// backing file, which is all a detach needs. Not an fsync, whose cache
	// flush would sync the backing file and every layer below it; making
	// the file durable is its owner's business (a snapshot of it syncs
	// what it keeps).
	if err := writeBack(d.f); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("loop detach %s: write back: %w", d.Path, err)
	}
	if err := writeBackDevice(d.Backing); err != nil {
		return fmt.Errorf("loop detach %s: write back %s: %w", d.Path, d.Backing, err)
	}
	err := unix.IoctlSetInt(int(d.f.Fd()), unix.LOOP_CLR_FD, 0)
	if errors.Is(err, unix.ENXIO) {
		err = nil // already cleared
	}
	cerr := d.f.Close()
	d.f = nil
	if err != nil {
		return fmt.Errorf("loop detach %s: %w", d.Path, err)
	}
	if cerr != nil {
		return fmt.Errorf("loop detach %s: %w", d.Path, cerr)
	}
	return waitGone(d.Number, d.Backing)
}

// writeBack writes f's dirty pages back and waits for them.
func writeBack(f *os.File) error {
	const wb = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	return unix.SyncFileRange(int(f.Fd()), 0, 0, wb)
}

// writeBackDevice writes back the page cache of a backing file that is a
// block device (a partition's device stacked on a volume's): the loop
// driver wrote into that cache, where nothing else writes it back before
// the file below is read. A regular file's pages need nothing: whoever
// reads the file reads them.
func writeBackDevice(backing string) error {
	st, err := os.Stat(backing)
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return nil
	}
	f, err := os.Open(backing)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeBack(f)
}

func waitGone(n int, backing string) error {
	for i := 0; i < 200; i++ {
		b, err := BackingFile(n)
		if err != nil || b != backing {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("loop detach /dev/loop%d: still attached to %s", n, backing)
}

// BackingFile returns what /dev/loopN is attached to ("" if nothing).
func BackingFile(n int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/sys/block/loop%d/loop/backing_file", n))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// WaitDetached waits up to timeout for every loop device backed by a file
// under dir to go, and returns those still attached. An autoclear device is
// detached by the kernel only once its last user (a mount just unmounted)
// is gone, which can lag the unmount on a busy host.
func WaitDetached(dir string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := Attached(dir)
		if len(b) == 0 || time.Now().After(deadline) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Attached lists loop devices whose backing file is under dir.
func Attached(dir string) ([]string, error) {
	matches, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		f := strings.TrimSpace(string(b))
		f = strings.TrimSuffix(f, " (deleted)")
		if dir == "" || f == dir || strings.HasPrefix(f, strings.TrimSuffix(dir, "/")+"/") {
			dev := filepath.Base(filepath.Dir(filepath.Dir(m)))
			out = append(out, "/dev/"+dev+" -> "+f)
		}
	}
	return out, nil
}
