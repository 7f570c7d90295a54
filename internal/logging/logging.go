// Package logging sets up aminator's logs (INFO to the console, DEBUG to
// one file per bake) and runs external commands with their output sent to
// the log line by line, keeping the last lines for error messages.
package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Console makes the console logger: INFO (DEBUG with debug) to w.
func Console(w io.Writer, debug bool) slog.Handler {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
	}
	return slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
		}
		return a
	}})
}

// BakeFile opens dir/name.log for a bake's DEBUG log.
func BakeFile(dir, name string) (*os.File, slog.Handler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("bake log: %w", err)
	}
	return f, slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}), nil
}

// Tail keeps the last N lines written to it.
type Tail struct {
	mu    sync.Mutex
	N     int
	lines []string
}

// Add records a line.
func (t *Tail) Add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.N {
		t.lines = t.lines[len(t.lines)-t.N:]
	}
}

// String joins the kept lines.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// lineWriter sends each complete line to the logger and the tail.
type lineWriter struct {
	log     *slog.Logger
	name    string
	tail    *Tail
	observe func(string)
	buf     bytes.Buffer
	mu      sync.Mutex
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf.Next(i + 1)))
	}
	if w.buf.Len() > 64<<10 { // a very long line without newline
		w.emit(w.buf.String())
		w.buf.Reset()
	}
	return len(p), nil
}

func (w *lineWriter) emit(s string) {
	s = strings.TrimRight(s, "\r\n")
	w.log.Debug(w.name+": "+s, "cmd", w.name)
	w.tail.Add(s)
	if w.observe != nil {
		w.observe(s)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}

// CommandError is a failed command with its last lines of output.
type CommandError struct {
	Argv     []string
	ExitCode int
	Tail     string
	Err      error
}

func (e *CommandError) Error() string {
	cmd := strings.Join(e.Argv, " ")
	cause, lines := e.Cause()
	if cause == "" {
		msg := fmt.Sprintf("%s: %v", cmd, e.Err)
		if e.Tail != "" {
			msg += "\n  last output:\n    " + strings.ReplaceAll(e.Tail, "\n", "\n    ")
		}
		return msg
	}
	// The reason first, in the tool's words; then the command and the
	// tool's last error lines (the whole output is in the DEBUG log).
	msg := fmt.Sprintf("%s\n  %s: %v", cause, cmd, e.Err)
	if len(lines) > 1 || (len(lines) == 1 && lines[0] != cause) {
		msg += "\n  " + filepath.Base(e.Argv[0]) + "'s last error lines:\n    " + strings.Join(lines, "\n    ")
	}
	return msg
}

// Cause is the line of the command's output that says why it failed, and
// the last error lines around it (see Cause); none for a cancelled command.
func (e *CommandError) Cause() (string, []string) {
	if e.Tail == "" || len(e.Argv) == 0 || errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		return "", nil
	}
	return Cause(e.Tail)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Run runs cmd (not started yet) with its standard output and error sent to
// log at DEBUG. If stdout is non-nil, standard output goes there instead.
// Cancelling ctx sends SIGTERM to the command's process group, then SIGKILL
// after grace.
func Run(ctx context.Context, log *slog.Logger, cmd *exec.Cmd, stdout io.Writer) error {
	return RunLines(ctx, log, cmd, stdout, nil)
}

// RunLines is Run that also hands each line of output that goes to the log
// to observe (for example to show a tool's phase on a progress line).
func RunLines(ctx context.Context, log *slog.Logger, cmd *exec.Cmd, stdout io.Writer, observe func(string)) error {
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 0 {
		name = filepath.Base(cmd.Args[0])
	}
	tail := &Tail{N: 25}
	lw := &lineWriter{log: log, name: name, tail: tail, observe: observe}
	if stdout != nil {
		cmd.Stdout = stdout
	} else if cmd.Stdout == nil {
		cmd.Stdout = lw
	}
	if cmd.Stderr == nil {
		cmd.Stderr = lw
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	log.Debug("exec", "argv", strings.Join(cmd.Args, " "), "dir", cmd.Dir)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return &CommandError{Argv: cmd.Args, ExitCode: -1, Err: err}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	lw.flush()
	log.Debug("exit", "argv0", name, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
		return &CommandError{Argv: cmd.Args, ExitCode: code, Tail: tail.String(), Err: err}
	}
	return nil
}

// Host runs argv on the host (not in a chroot) with a minimal environment.
func Host(ctx context.Context, log *slog.Logger, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	return Run(ctx, log, cmd, nil)
}
