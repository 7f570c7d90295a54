// Package mntns runs a bake in a private mount namespace. The CLI re-runs
// itself as a child with CLONE_NEWNS (Go makes the child's / recursively
// private), so the bake's mounts are invisible to the host, never
// propagate to other bakes, and vanish with the child even if it is killed
// with SIGKILL; its loop devices, attached with autoclear, then go too.
package mntns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

const envKey = "_AMINATOR_MNTNS"

// InChild reports whether this process is the re-run child.
func InChild() bool { return os.Getenv(envKey) == "1" }

// Reexec runs this program again with the same arguments in a new mount
// namespace, forwards SIGINT/SIGTERM/SIGHUP to it, and returns its exit code.
func Reexec() (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("re-run in a mount namespace: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envKey+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM}
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
