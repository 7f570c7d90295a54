package chroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sandbox"
	"github.com/aminator-go/aminator/internal/sandbox/egress"
)

// env builds the command environment: the base plus extras, sorted.
func (c *Chroot) env(extra map[string]string, interactive bool) []string {
	m := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME": "/root",
		"LANG": "C.UTF-8",
	}
	for k, v := range c.baseEnv {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	if t := os.Getenv("TERM"); interactive && t != "" {
		m["TERM"] = t
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// lookPath finds argv0 inside the image (never on the host).
func (c *Chroot) lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	p := "/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range strings.Split(p, ":") {
		cand := path.Join(dir, argv0)
		st, err := c.root.Stat(strings.TrimPrefix(cand, "/"))
		if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the image's PATH (%s)", argv0, p)
}

// proxyPort is where a download sandbox's own loopback leads to the
// egress proxy (each sandbox has its own network namespace: no clash).
const proxyPort = 3128

// command makes the sandboxed command for r; done stops what it started
// (the egress proxy of a download) once the command has ended.
func (c *Chroot) command(r plugin.Run) (cmd *exec.Cmd, done func(), err error) {
	if len(r.Argv) == 0 {
		return nil, nil, errors.New("run: empty command")
	}
	env := c.env(r.Env, r.Interactive)
	p, err := c.lookPath(r.Argv[0], env)
	if err != nil {
		return nil, nil, err
	}
	// Package code runs in the sandbox (issue 10): pivot_root into the
	// image, its own PID, network, UTS and IPC namespaces, reduced
	// capabilities and a seccomp filter. A download reaches the image's
	// package sources through the egress proxy and nothing else;
	// --script-network shares the bake's network with every command.
	spec := sandbox.Spec{Root: c.path, Path: p, Argv: r.Argv, Env: env, Dir: "/", Network: c.scriptNetwork}
	done = func() {}
	if r.Network && !c.scriptNetwork {
		px, err := egress.Start(os.TempDir(), egress.SourceHosts(c.root), c.log)
		if err != nil {
			return nil, nil, err
		}
		done = func() { px.Close() }
		spec.ProxyDir, spec.ProxyPort = px.Dir, proxyPort
		u := "http://127.0.0.1:" + strconv.Itoa(proxyPort)
		spec.Env = append(spec.Env, "http_proxy="+u, "https_proxy="+u)
	}
	cmd, err = sandbox.Command(spec)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("run %s: %w", r.Argv[0], err)
	}
	return cmd, done, nil
}

// Run runs a command inside the chroot.
func (c *Chroot) Run(ctx context.Context, r plugin.Run) error {
	cmd, done, err := c.command(r)
	if err != nil {
		return err
	}
	defer done()
	if r.Interactive {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		// On a terminal the shell gets the foreground, so Ctrl-C in it
		// reaches the shell, not the bake; the terminal is taken back after.
		_, ttyErr := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
		tty := ttyErr == nil
		if tty {
			cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, true, 0
		}
		c.log.Info("interactive shell in the chroot; exit it to continue the bake", "path", c.path)
		err := cmd.Run()
		if tty {
			signal.Ignore(syscall.SIGTTOU)
			unix.IoctlSetPointerInt(int(os.Stdin.Fd()), unix.TIOCSPGRP, unix.Getpgrp())
			signal.Reset(syscall.SIGTTOU)
		}
		if err != nil {
			return fmt.Errorf("interactive %s: %w", strings.Join(r.Argv, " "), err)
		}
		return nil
	}
	return logging.Run(ctx, c.log, cmd, nil)
}

// Output runs a command inside the chroot and returns its standard output.
func (c *Chroot) Output(ctx context.Context, r plugin.Run) ([]byte, error) {
	cmd, done, err := c.command(r)
	if err != nil {
		return nil, err
	}
	defer done()
	var out bytes.Buffer
	if err := logging.Run(ctx, c.log, cmd, &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
