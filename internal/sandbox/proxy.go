package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// stage2Key marks the command's own process when PID 1 stays behind as the
// egress forwarder (Spec.ProxyDir): it only drops privileges and execs.
const stage2Key = "_AMINATOR_SANDBOX_STAGE2"

// ProxySocket is the name of the egress proxy's socket in Spec.ProxyDir.
const ProxySocket = "proxy.sock"

// runForwarder is PID 1 of a download sandbox: it listens on the
// sandbox's own 127.0.0.1:ProxyPort and forwards each connection to the
// bake's egress proxy socket (reached through a directory fd opened before
// pivot_root, which package code cannot see: PID 1 is not dumpable and
// keeps capabilities the command lacks). It runs the command as its child
// (stage 2), passes signals on and exits with the command's status.
func runForwarder(s Spec, dirfd int) error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("not dumpable: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.ProxyPort))
	if err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	sock := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + ProxySocket
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go forward(c, sock)
		}
	}()
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: s.Argv, Env: []string{stage2Key + "=" + string(b)},
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Path, err)
	}
	go func() {
		for sig := range sigs {
			cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("wait for %s: %w", s.Path, err)
	}
	os.Exit(0)
	return nil
}

// forward copies one connection to the proxy socket and back.
func forward(c net.Conn, sock string) {
	defer c.Close()
	u, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); u.(*net.UnixConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// stage2 is the command's own process under a forwarder PID 1: the mounts
// and network are set up already; it drops privileges and execs.
func stage2(raw string) error {
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	return dropAndExec(s)
}
