package fakechroot

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

// Chroot is a fake chroot: a directory. Commands no rule matches succeed
// with no output.
type Chroot struct {
	// Options are the ones a Distro entered it with.
	Options plugin.MountOptions

	t    testing.TB // New's; nil for a Distro's
	d    *Distro    // the Distro that entered it; nil for New's
	path string
	root *os.Root

	mu                sync.Mutex
	now               time.Time
	rules             []*rule
	calls             []Call
	binds             map[string]string // rel -> host source, while bound
	closed, preserved bool
}

var _ plugin.Chroot = (*Chroot)(nil)

func newChroot(path string, root *os.Root) *Chroot {
	return &Chroot{path: path, root: root, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), binds: map[string]string{}}
}

// New makes a fake chroot whose image is an empty temporary directory.
func New(t testing.TB) *Chroot {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	c := newChroot(dir, root)
	c.t = t
	return c
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

// WriteFile puts a file in the image (rel is relative to its root); only
// on a chroot New made.
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

// Closed says whether Close ran.
func (c *Chroot) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Preserved says whether Preserve ran.
func (c *Chroot) Preserved() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.preserved
}

func (c *Chroot) name() string { return filepath.Base(c.path) }

// Path is the image's directory on the host.
func (c *Chroot) Path() string { return c.path }

// Root gives file access confined to the image.
func (c *Chroot) Root() *os.Root { return c.root }

// result records a command and picks its answer.
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

// exec passes the hook, records the command and answers it: a Block rule
// waits for the context; a cancelled context fails the command, as it
// would kill a real one; then the Distro's Exec, else the rule's result.
func (c *Chroot) exec(ctx context.Context, method string, r plugin.Run) ([]byte, error) {
	if err := c.d.call(method, strings.Join(r.Argv, " ")); err != nil {
		return nil, err
	}
	if len(r.Argv) == 0 {
		return nil, fmt.Errorf("run: empty command")
	}
	res := c.result(r)
	if res.Block {
		if res.Started != nil {
			close(res.Started)
		}
		<-ctx.Done()
		return nil, &logging.CommandError{Argv: r.Argv, ExitCode: -1, Tail: strings.TrimRight(res.Output, "\n"),
			Err: fmt.Errorf("%w (signal: terminated)", context.Cause(ctx))}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.Argv[0], context.Cause(ctx))
	}
	if c.d != nil && c.d.Exec != nil {
		return c.d.Exec(ctx, c, r)
	}
	if res.Exit != 0 {
		return nil, &logging.CommandError{Argv: r.Argv, ExitCode: res.Exit, Tail: strings.TrimRight(res.Output, "\n"),
			Err: fmt.Errorf("exit status %d", res.Exit)}
	}
	return []byte(res.Stdout), nil
}

// Run runs a command: it records it and answers as exec says.
func (c *Chroot) Run(ctx context.Context, r plugin.Run) error {
	_, err := c.exec(ctx, "Chroot.Run", r)
	return err
}

// Output is Run that returns the command's standard output.
func (c *Chroot) Output(ctx context.Context, r plugin.Run) ([]byte, error) {
	return c.exec(ctx, "Chroot.Output", r)
}

// BindFile passes the hook and copies src to rel inside the image (a
// real chroot bind-mounts it); the returned func removes it.
func (c *Chroot) BindFile(src, rel string) (func() error, error) {
	if err := c.d.call("Chroot.BindFile", rel); err != nil {
		return nil, err
	}
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

// EndProcesses only passes the hook: the fake starts no process.
func (c *Chroot) EndProcesses(context.Context) error {
	return c.d.call("Chroot.EndProcesses", c.name())
}

// Close passes the hook and marks the chroot closed; a Distro's chroot
// also closes its root (New's is closed when the test ends). Closing
// twice is fine.
func (c *Chroot) Close(context.Context) error {
	if err := c.d.call("Chroot.Close", c.name()); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.d != nil {
		return c.root.Close()
	}
	return nil
}

// Preserve passes the hook and marks the chroot kept (there is nothing
// mounted to keep).
func (c *Chroot) Preserve() {
	c.d.call("Chroot.Preserve", c.name())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preserved = true
}
