package binfmt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// View calls fn with a directory that shows binfmt_misc: dir itself when
// binfmt_misc is mounted there or dir is not the kernel's place (a test's
// stand-in), else binfmt_misc mounted for the call in a directory of its
// own, unmounted and removed after it. A job runs in a mount namespace of
// its own with a /proc of its own, where the host's binfmt_misc mount
// (systemd's, binfmt-support's) is not, yet the handlers are the host's.
// Where no mount can be made, fn gets dir, and Find says it is not
// mounted. The error fn returns names dir, not the directory of the call.
func View(dir string, fn func(dir string) error) error {
	return view(dir, dir == Dir, fn)
}

// view is View, told whether dir is where the kernel's binfmt_misc goes.
func view(dir string, kernels bool, fn func(dir string) error) error {
	if !kernels || mounted(dir) {
		return fn(dir)
	}
	tmp, err := os.MkdirTemp("", "aminator-binfmt-")
	if err != nil {
		return fn(dir)
	}
	defer os.Remove(tmp)
	if err := unix.Mount("binfmt_misc", tmp, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fn(dir)
	}
	defer unix.Unmount(tmp, unix.MNT_DETACH)
	if err := fn(tmp); err != nil {
		return &viewError{msg: strings.ReplaceAll(err.Error(), tmp, dir), err: err}
	}
	return nil
}

// mounted reports whether binfmt_misc shows in dir.
func mounted(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "register"))
	return err == nil
}

// viewError is fn's error as the caller's directory would have it.
type viewError struct {
	msg string
	err error
}

func (e *viewError) Error() string { return e.msg }
func (e *viewError) Unwrap() error { return e.err }

// Mount mounts binfmt_misc at dir unless it shows there already, and
// reports whether it did.
func Mount(dir string) (bool, error) {
	if mounted(dir) {
		return false, nil
	}
	if err := unix.Mount("binfmt_misc", dir, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return false, fmt.Errorf("mount binfmt_misc at %s: %w", dir, err)
	}
	return true, nil
}

// Foreign are the architectures aminator bakes for that this host runs
// only under an emulator.
func Foreign() []string {
	var out []string
	for _, a := range []string{"x86_64", "arm64"} {
		if !Native(a) {
			out = append(out, a)
		}
	}
	return out
}
