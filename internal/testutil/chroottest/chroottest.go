// Package chroottest is a fake plugin.Chroot for tests that run as an
// ordinary user, in milliseconds: it records the argv of every command it
// is asked to run and answers from canned results, fails the way the real
// chroot does (a *logging.CommandError whose output gives the cause),
// keeps the image's files in a temporary directory, and keeps a fake
// clock that each command moves on by the time its result says it took.
package chroottest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Result is what one command answers.
type Result struct {
	// Stdout is what Output returns.
	Stdout string
	// Output is what the command printed (its last lines make a failure's
	// cause, as logging.Run keeps them).
	Output string
	// Exit, if not 0, fails the command with that exit status.
	Exit int
	// Took moves the fake clock on.
	Took time.Duration
	// Block makes the command run until its context ends, then fail as a
	// cancelled command does.
	Block bool
	// Started, if not nil, is closed when a Block command starts.
	Started chan struct{}
}

// OK is a successful command printing stdout.
func OK(stdout string) Result { return Result{Stdout: stdout} }

// Fail is a command that exits with code after printing output.
func Fail(code int, output string) Result { return Result{Exit: code, Output: output} }

// Call is one command the chroot was asked to run.
type Call struct {
	Argv []string
	Env  map[string]string
}

// String is the argv joined by spaces.
func (c Call) String() string { return strings.Join(c.Argv, " ") }

type rule struct {
	match   string
	results []Result
	n       int
}

// Chroot is the fake. Commands no rule matches succeed with no output.
type Chroot struct {
	t    testing.TB
	dir  string
	root *os.Root

	mu     sync.Mutex
	now    time.Time
	rules  []*rule
	calls  []Call
	binds  map[string]string // rel -> host source, while bound
	closed bool
}

var _ plugin.Chroot = (*Chroot)(nil)

// New makes a fake chroot whose image is an empty temporary directory.
func New(t testing.TB) *Chroot {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &Chroot{t: t, dir: dir, root: root, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), binds: map[string]string{}}
}

// On answers the commands whose argv, joined by spaces, contains match:
// the first such command gets the first result, the next the second, and
// the last result repeats. Rules are tried in the order they were added.
func (c *Chroot) On(match string, results ...Result) *Chroot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(results) == 0 {
		results = []Result{{}}
	}
	c.rules = append(c.rules, &rule{match: match, results: results})
	return c
}

// WriteFile puts a file in the image (rel is relative to its root).
func (c *Chroot) WriteFile(rel string, data string) {
	c.t.Helper()
	if err := c.root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := c.root.WriteFile(rel, []byte(data), 0o755); err != nil {
		c.t.Fatal(err)
	}
}

// Now is the fake clock.
func (c *Chroot) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Calls are the commands run so far, in order.
func (c *Chroot) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Commands are the calls' argv joined by spaces.
func (c *Chroot) Commands() []string {
	var out []string
	for _, call := range c.Calls() {
		out = append(out, call.String())
	}
	return out
}

// Bound lists the files bound into the image and not yet removed.
func (c *Chroot) Bound() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for rel := range c.binds {
		out = append(out, rel)
	}
	return out
}

// Closed reports whether Close was called.
func (c *Chroot) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Path is the image's directory on the host.
func (c *Chroot) Path() string { return c.dir }

// Root gives access to the image's files.
func (c *Chroot) Root() *os.Root { return c.root }

func (c *Chroot) result(r plugin.Run) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{Argv: append([]string(nil), r.Argv...), Env: r.Env})
	cmd := strings.Join(r.Argv, " ")
	for _, ru := range c.rules {
		if strings.Contains(cmd, ru.match) {
			res := ru.results[min(ru.n, len(ru.results)-1)]
			ru.n++
			c.now = c.now.Add(res.Took)
			return res
		}
	}
	return Result{}
}

func (c *Chroot) exec(ctx context.Context, r plugin.Run) (string, error) {
	if len(r.Argv) == 0 {
		return "", fmt.Errorf("run: empty command")
	}
	res := c.result(r)
	if res.Block {
		if res.Started != nil {
			close(res.Started)
		}
		<-ctx.Done()
		return "", &logging.CommandError{Argv: r.Argv, ExitCode: -1, Tail: strings.TrimRight(res.Output, "\n"),
			Err: fmt.Errorf("%w (signal: terminated)", context.Cause(ctx))}
	}
	if res.Exit != 0 {
		return "", &logging.CommandError{Argv: r.Argv, ExitCode: res.Exit, Tail: strings.TrimRight(res.Output, "\n"),
			Err: fmt.Errorf("exit status %d", res.Exit)}
	}
	return res.Stdout, nil
}

// Run runs a command: it records it and answers as a rule says.
func (c *Chroot) Run(ctx context.Context, r plugin.Run) error {
	_, err := c.exec(ctx, r)
	return err
}

// Output is Run that returns the command's standard output.
func (c *Chroot) Output(ctx context.Context, r plugin.Run) ([]byte, error) {
	out, err := c.exec(ctx, r)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// BindFile copies src to rel inside the image (a real chroot bind-mounts
// it); the returned func removes it.
func (c *Chroot) BindFile(src, rel string) (func() error, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("bind %s into the image: %w", src, err)
	}
	defer in.Close()
	out, err := c.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bind %s into the image: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return nil, err
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.binds[rel] = src
	c.mu.Unlock()
	return func() error {
		c.mu.Lock()
		delete(c.binds, rel)
		c.mu.Unlock()
		return c.root.Remove(rel)
	}, nil
}

// EndProcesses does nothing: the fake starts no process.
func (c *Chroot) EndProcesses(ctx context.Context) error { return nil }

// Close marks the chroot closed.
func (c *Chroot) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// Preserve keeps nothing: there is nothing mounted.
func (c *Chroot) Preserve() {}
