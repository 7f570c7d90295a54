// Package undo runs a job (a bake, a foundation) as named, timed stages and
// keeps a stack of undo actions, as Packer's multistep does: every resource a stage makes pushes
// its undo at the moment it exists, and when the bake ends the stack runs
// in reverse — always for "release" undos (unmount, detach, delete the
// work volume), only on failure for "rollback" undos (a half-made snapshot
// or image). Undos run on a context that outlives cancellation, so Ctrl-C
// still cleans up.
package undo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Timing is how long one stage took.
type Timing struct {
	Stage    string        `json:"stage"`
	Duration time.Duration `json:"duration_ns"`
}

// Action is a registered cleanup.
type Action struct {
	name     string
	fn       func(context.Context) error
	rollback bool // only on failure
	// Preservable undos are skipped by --preserve-on-error.
	preservable bool
	// Hint tells a user how to do it by hand when it was preserved.
	hint string
	done bool
	p    *Stack
}

// Stack is the undo stack of one job.
type Stack struct {
	log     *slog.Logger
	mu      sync.Mutex
	undos   []*Action
	timings []Timing
	// CleanupTimeout bounds all undos together.
	CleanupTimeout time.Duration
}

// New makes a stack that logs to log.
func New(log *slog.Logger) *Stack {
	return &Stack{log: log, CleanupTimeout: 5 * time.Minute}
}

// Stage runs fn as a named, timed stage.
func (p *Stack) Stage(ctx context.Context, name string, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, context.Cause(ctx))
	}
	d, err := Step(ctx, p.log, name, fn)
	p.mu.Lock()
	p.timings = append(p.timings, Timing{Stage: name, Duration: d})
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Step runs fn as a named, timed step outside a stack. It logs what a
// stage logs, which the terminal console shows as a `==> name  time` line:
// INFO "stage NAME" with stage=NAME when it starts, DEBUG "stage done" or
// "stage failed" with stage=NAME and took=DURATION when it ends.
func Step(ctx context.Context, log *slog.Logger, name string, fn func(context.Context) error) (time.Duration, error) {
	log.Info("stage "+name, "stage", name)
	start := time.Now()
	err := fn(ctx)
	d := time.Since(start)
	if err != nil {
		log.Debug("stage failed", "stage", name, "took", d.Round(time.Millisecond), "err", err)
		return d, err
	}
	log.Debug("stage done", "stage", name, "took", d.Round(time.Millisecond))
	return d, nil
}

// Timings returns the stage durations so far.
func (p *Stack) Timings() []Timing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Timing(nil), p.timings...)
}

// Release registers an undo that always runs when the stack finishes.
// hint says how to do it by hand if --preserve-on-error skips it.
func (p *Stack) Release(name, hint string, fn func(context.Context) error) *Action {
	return p.push(&Action{name: name, fn: fn, preservable: hint != "", hint: hint})
}

// Rollback registers an undo that runs only if the job fails.
func (p *Stack) Rollback(name string, fn func(context.Context) error) *Action {
	return p.push(&Action{name: name, fn: fn, rollback: true})
}

func (p *Stack) push(u *Action) *Action {
	u.p = p
	p.mu.Lock()
	p.undos = append(p.undos, u)
	p.mu.Unlock()
	return u
}

// Now runs the undo at once (for example unmounting before a snapshot) and
// takes it off the stack once it succeeds; a failed undo stays, so the
// final cleanup tries it again.
func (u *Action) Now(ctx context.Context) error {
	u.p.mu.Lock()
	if u.done {
		u.p.mu.Unlock()
		return nil
	}
	u.p.mu.Unlock()
	u.p.log.Debug("undo", "step", u.name)
	if err := u.fn(ctx); err != nil {
		return fmt.Errorf("%s: %w", u.name, err)
	}
	u.p.mu.Lock()
	u.done = true
	u.p.mu.Unlock()
	return nil
}

// Finish runs the undo stack in reverse. failed says whether the bake
// failed; preserve skips preservable undos on failure and returns their
// hints. Every undo runs even if one fails; their errors are joined.
func (p *Stack) Finish(ctx context.Context, failed, preserve bool) (hints []string, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.CleanupTimeout)
	defer cancel()
	p.mu.Lock()
	undos := append([]*Action(nil), p.undos...)
	p.undos = nil
	p.mu.Unlock()
	var errs []error
	for i := len(undos) - 1; i >= 0; i-- {
		u := undos[i]
		p.mu.Lock()
		done := u.done
		p.mu.Unlock()
		if done || (u.rollback && !failed) {
			continue
		}
		if failed && preserve && u.preservable {
			hints = append(hints, u.hint)
			continue
		}
		start := time.Now()
		if e := u.Now(ctx); e != nil {
			p.log.Error("cleanup failed", "step", u.name, "err", e)
			errs = append(errs, e)
			continue
		}
		p.log.Debug("cleanup done", "step", u.name, "took", time.Since(start).Round(time.Millisecond))
	}
	return hints, errors.Join(errs...)
}
