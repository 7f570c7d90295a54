// Package mntns runs a bake in private mount and PID namespaces. The CLI
// re-runs itself as a child with CLONE_NEWNS (Go makes the child's /
// recursively private) and CLONE_NEWPID, so the bake's mounts are invisible
// to the host and never propagate to other bakes, and when the child dies —
// even by SIGKILL — the kernel kills every process it started (a daemon a
// postinst forked included), the namespace and its mounts go, and the loop
// devices, attached with autoclear, are released.
package mntns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/mount"
)

const envKey = "_AMINATOR_MNTNS"

// InChild reports whether this process is the re-run child.
func InChild() bool { return os.Getenv(envKey) == "1" }

// SetupChild mounts a /proc that shows the child's own PID namespace (in
// its private mount namespace, so the host's /proc is untouched); the
// chroot code finds leftover processes there.
//
// It also lets go of other bakes' mounts that the new namespace copied (a
// volume kept by --preserve-on-error, a boot test's scratch disk) and of
// the store filesystems of state directories other than stateDir: held
// here, they would keep those loop devices attached after their owners
// unmount them (aminate init --unmount), for as long as this bake runs.
func SetupChild(stateDir string) error {
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc for the bake's PID namespace: %w", err)
	}
	if points, err := mount.Points(); err == nil {
		own, _ := os.Stat(filepath.Join(stateDir, "data"))
		otherStore := func(mp string) bool {
			st, err := os.Stat(mp)
			return isStoreMount(mp) && err == nil && (own == nil || !os.SameFile(st, own))
		}
		for _, m := range othersMounts(points, otherStore) {
			unix.Unmount(m, unix.MNT_DETACH) // best effort: it only frees the copy
		}
	}
	return nil
}

// bakeMount matches the mount points of bakes and boot tests: STATE/mnt/vol-ID
// and STATE/tmp/boottest-*/mnt.
var bakeMount = regexp.MustCompile(`/mnt/vol-[0-9a-f]+$|/boottest-[^/]+/mnt$`)

// isStoreMount reports whether a mount point is a state directory's store
// filesystem (STATE/data, with STATE/data.yml beside it).
func isStoreMount(mp string) bool {
	if filepath.Base(mp) != "data" {
		return false
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(mp), "data.yml"))
	return err == nil
}

// othersMounts picks, from a list of mount points, the top-most ones of
// bakes and boot tests, and those otherStore says are other state
// directories' store filesystems (their submounts go with them).
func othersMounts(points []string, otherStore func(string) bool) []string {
	var tops []string
	for _, mp := range points {
		if !bakeMount.MatchString(mp) && !otherStore(mp) {
			continue
		}
		nested := false
		for _, t := range tops {
			if strings.HasPrefix(mp, t+"/") || mp == t {
				nested = true
			}
		}
		if !nested {
			tops = append(tops, mp)
		}
	}
	return tops
}

// Reexec runs this program again with the same arguments in a new mount
// namespace, with stdin as its standard input (nil: this process's),
// forwards SIGINT/SIGTERM/SIGHUP to it, and returns its exit code.
func Reexec(stdin io.Reader) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("re-run in a mount namespace: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envKey+"=1")
	if stdin == nil {
		stdin = os.Stdin
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("re-run in a mount namespace: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
