package sandbox

import (
	"os/exec"
	"syscall"
	"testing"
)

// BenchmarkSandboxed is one command (sh -c true) run in the sandbox: the
// cost every command inside an image now pays.
func BenchmarkSandboxed(b *testing.B) {
	root := hostRoot(b)
	for b.Loop() {
		cmd, err := Command(Spec{Root: root, Path: "/bin/sh", Argv: []string{"sh", "-c", "true"}, Env: []string{"PATH=/usr/bin"}})
		if err != nil {
			b.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
}

// BenchmarkChroot is the same command as it ran before the sandbox: a
// chroot with new UTS and IPC namespaces.
func BenchmarkChroot(b *testing.B) {
	root := hostRoot(b)
	for b.Loop() {
		cmd := exec.Command("/bin/sh", "-c", "true")
		cmd.Env = []string{"PATH=/usr/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
}

// BenchmarkSandboxedNetwork is BenchmarkSandboxed with the bake's network
// (no new network namespace): what the network namespace costs.
func BenchmarkSandboxedNetwork(b *testing.B) {
	root := hostRoot(b)
	for b.Loop() {
		cmd, err := Command(Spec{Root: root, Path: "/bin/sh", Argv: []string{"sh", "-c", "true"}, Env: []string{"PATH=/usr/bin"}, Network: true})
		if err != nil {
			b.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
}
