// Package sandbox runs a command inside an image the way bubblewrap,
// systemd-nspawn and mkosi's sandbox do, so that package code (maintainer
// scripts, the image's own dpkg/apt/rpm, /var/local/*.sh, -i shells)
// cannot reach the build host:
//
//   - a new mount namespace, pivot_root into the image and the old root
//     detached, so no path, fd or /proc entry leads back to the host's tree;
//   - a new PID namespace whose PID 1 is the command itself (for a
//     download, aminate stays PID 1 to forward the sandbox's proxy port to
//     the bake's egress proxy: proxy.go), with a procfs of that namespace
//     only (no host or bake process is visible);
//   - new network (only loopback, unless asked), UTS and IPC namespaces;
//   - a bounding set without sys_admin, sys_chroot, mknod, sys_ptrace, ...,
//     no_new_privs and a seccomp filter (caps.go, seccomp.go);
//   - an environment made of nothing but what the caller gives.
//
// The parent side is Command, which re-executes this program; the child
// side runs from this package's initialisation (init below), before the
// rest of the program is initialised: a command's sandbox does not wait
// for the whole of aminate to start, and no program that links this
// package can run itself again inside a sandbox.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// envKey carries the Spec to the re-executed child; it is the child's only
// environment variable and is not passed on to the command.
const envKey = "_AMINATOR_SANDBOX"

// Spec is one command to run in an image.
type Spec struct {
	// Root is the image's root directory on the host (a mount point).
	Root string `json:"root"`
	// Path is the program inside the image; Argv its arguments (Argv[0]
	// included); Env its whole environment.
	Path string   `json:"path"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// Dir is the working directory inside the image ("/" if empty).
	Dir string `json:"dir"`
	// Network keeps the bake's network namespace: only for phases that
	// download and run no package code, or for --script-network.
	Network bool `json:"network"`
	// ProxyDir, for a download without the bake's network, is a host
	// directory holding the bake's egress proxy socket (ProxySocket); the
	// sandbox then has only its loopback, where 127.0.0.1:ProxyPort leads
	// to that proxy and nowhere else.
	ProxyDir  string `json:"proxy_dir"`
	ProxyPort int    `json:"proxy_port"`
	// Hostname is the sandbox's hostname ("localhost" if empty), so the
	// host's own name does not leak into the image either.
	Hostname string `json:"hostname"`
}

// Command returns the command that runs s in a sandbox: this program
// re-executed in new namespaces. The caller sets its stdio and starts it.
func Command(s Spec) (*exec.Cmd, error) {
	if s.Root == "" || s.Path == "" || len(s.Argv) == 0 {
		return nil, errors.New("sandbox: root, path and argv are required")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode spec: %w", err)
	}
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if !s.Network {
		flags |= syscall.CLONE_NEWNET
	}
	if s.Network && s.ProxyDir != "" {
		return nil, errors.New("sandbox: a proxy is for a sandbox without the network")
	}
	if s.ProxyDir != "" {
		if err := selfStatic(); err != nil {
			return nil, err
		}
	}
	return &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        append([]string(nil), s.Argv...), // what logs and errors name
		Env:         []string{envKey + "=" + string(b)},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: flags},
	}, nil
}

// init turns this process into the sandboxed command if Command started
// it, and does nothing otherwise; in the child it never returns.
//
// It runs at initialisation because the Go specification initialises a
// package as soon as the packages it imports are (in the order of their
// import paths): this one needs only the standard library and x/sys, so
// the child is set up before the rest of aminate (the clouds' SDKs, the
// bakery, the templates) is initialised, which would cost each command in
// an image tens of milliseconds of CPU for code it never runs.
func init() {
	raw, ok := os.LookupEnv(envKey)
	run := child
	if !ok {
		if raw, ok = os.LookupEnv(stage2Key); !ok {
			return
		}
		run = stage2
	}
	// Capabilities, no_new_privs and seccomp are per thread: all of them
	// and the final execve happen on this one thread.
	runtime.LockOSThread()
	err := run(raw)
	fmt.Fprintf(os.Stderr, "aminator sandbox: %v\n", err)
	os.Exit(127)
}

// child sets the sandbox up and executes the command; it returns only on
// error.
func child(raw string) error {
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	if os.Getpid() != 1 {
		return errors.New("not PID 1 of a new PID namespace")
	}
	dirfd := -1
	if s.ProxyDir != "" {
		fd, err := unix.Open(s.ProxyDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the proxy directory: %w", err)
		}
		dirfd = fd
	}
	if err := enterRoot(s.Root); err != nil {
		return err
	}
	if err := mountPseudo(); err != nil {
		return err
	}
	if err := setupNet(s); err != nil {
		return err
	}
	if dirfd >= 0 {
		return runForwarder(s, dirfd)
	}
	return dropAndExec(s)
}

// dropAndExec enters the working directory, drops privileges and execs
// the command.
func dropAndExec(s Spec) error {
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := installSeccomp(); err != nil {
		return err
	}
	if err := syscall.Exec(s.Path, s.Argv, s.Env); err != nil {
		return fmt.Errorf("exec %s: %w", s.Path, err)
	}
	return nil
}
