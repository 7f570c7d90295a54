package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
)

// ExecRunner runs a bake as a child `aminate bakery-bake` process, which
// reads the bake's QueuedBake on its standard input and bakes through the same
// service functions as `aminate bake`, printing the result as JSON.
type ExecRunner struct {
	// Binary is the aminate executable.
	Binary string
	// Args go after the subcommand (for example --state-dir, --config).
	Args []string
	// Env is the child's environment (nil: this process's).
	Env []string
	// SigningKey and TrustFile are the bakery's attest settings, handed
	// to every child in its QueuedBake ("": the child's configured ones).
	SigningKey, TrustFile string
}

// Argv is the child's command line.
func (e *ExecRunner) Argv() []string {
	return append([]string{e.Binary, bakery.ChildCommand}, e.Args...)
}

// Run runs the bake; cancelling ctx sends the child SIGTERM, and the bake
// cleans up as on Ctrl-C.
func (e *ExecRunner) Run(ctx context.Context, r *bakery.Record, log io.Writer) ([]bakery.Image, error) {
	q := bakery.QueuedBakeOf(r)
	q.SigningKey, q.TrustFile = e.SigningKey, e.TrustFile
	job, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("bake %s: %w", r.ID, err)
	}
	argv := e.Argv()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// If the worker dies, the bake is told to stop (and cleans up) rather
	// than running on beside the one a redelivery starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = 5 * time.Minute
	if e.Env != nil {
		cmd.Env = e.Env
	}
	var out bytes.Buffer
	why := &lastError{w: log}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(job), &out, why
	// The bake's log, which its team reads, shows the request, not where
	// the bakery's signing key is.
	shown, _ := json.Marshal(bakery.QueuedBakeOf(r))
	fmt.Fprintf(log, "bakery: %q < %s\n", argv, shown)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cancelled: %w", ctx.Err())
		}
		kept, _ := printedImages(out.Bytes()) // a failed bake for several architectures may keep some (keep_partial)
		if msg := why.message(); msg != "" {
			return kept, errors.New(msg)
		}
		return kept, fmt.Errorf("bake failed: %w (see the bake's log)", err)
	}
	return printedImages(out.Bytes())
}

// printedImage is an image as the child prints it.
type printedImage struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Arch string `json:"architecture"`
}

// printedImages reads the images from the child's JSON result: a bake's
// image, or the images of a bake for several architectures.
func printedImages(out []byte) ([]bakery.Image, error) {
	var res struct {
		Image  printedImage   `json:"image"`
		Images []printedImage `json:"images"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Image.ID == "" {
		return nil, errors.New("bake printed no image")
	}
	if len(res.Images) == 0 {
		res.Images = []printedImage{res.Image}
	}
	var images []bakery.Image
	for _, im := range res.Images {
		images = append(images, bakery.Image{ID: im.ID, Name: im.Name, Arch: im.Arch})
	}
	return images, nil
}

// lastError passes output through and keeps the child's "aminate: error:"
// line, the one-line reason a bake failed.
type lastError struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
	msg string
}

func (l *lastError) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if line, ok := bytes.CutPrefix(l.buf[:i], []byte("aminate: error: ")); ok {
			l.msg = string(line)
		}
		l.buf = l.buf[i+1:]
	}
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lastError) message() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}
