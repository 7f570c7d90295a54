//go:build crashpoint

package crashpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Enabled reports whether this binary carries the hooks.
const Enabled = true

func hit(point string) {
	if os.Getenv(Env) != point {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint %s\n", point)
	if os.Getpid() == 1 {
		// A job's process is its PID namespace's init, which the kernel
		// shields from its own SIGKILL: it ends at once instead, running
		// nothing (no deferred cleanup), and the kernel kills the rest of
		// its namespace and drops its mounts, as a SIGKILL would.
		syscall.Exit(128 + int(syscall.SIGKILL))
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
