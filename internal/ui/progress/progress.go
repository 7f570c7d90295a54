// Package progress lets a long step say how far it is (bytes stored, blocks
// pushed, seconds waited) without knowing who shows it. The CLI puts a
// Reporter in the context: on a terminal it draws bars, elsewhere it writes
// an occasional DEBUG line; with none, every call is a no-op, so library
// code reports unconditionally.
package progress

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Unit says how a bar's numbers read.
type Unit int

const (
	// Count is a plain number of things (blocks, percent).
	Count Unit = iota
	// Bytes are shown as KiB, MiB, GiB.
	Bytes
	// Duration is nanoseconds, shown as time waited against a limit.
	Duration
)

// Bar is one step's progress. Its methods may be called from several
// goroutines. A total of 0 or less means unknown (a spinner).
type Bar interface {
	// SetTotal changes the total.
	SetTotal(total int64)
	// SetCurrent says how much is done.
	SetCurrent(n int64)
	// Add adds n to what is done.
	Add(n int64)
	// Status sets a short phrase on what the step does now.
	Status(s string)
	// Done ends the bar; it may be called more than once.
	Done()
}

// Reporter starts bars.
type Reporter interface {
	Start(name string, total int64, unit Unit) Bar
}

type ctxKey struct{}

// With returns a context whose long steps report to r.
func With(ctx context.Context, r Reporter) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// Start starts a bar on the context's reporter (a no-op bar without one).
func Start(ctx context.Context, name string, total int64, unit Unit) Bar {
	if r, ok := ctx.Value(ctxKey{}).(Reporter); ok && r != nil {
		return r.Start(name, total, unit)
	}
	return nop{}
}

// Wait shows the time spent waiting against limit, updated every second,
// until the returned function is called.
func Wait(ctx context.Context, name string, limit time.Duration) (done func()) {
	if _, ok := ctx.Value(ctxKey{}).(Reporter); !ok {
		return func() {}
	}
	bar := Start(ctx, name, int64(limit), Duration)
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				bar.SetCurrent(int64(time.Since(start)))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			bar.Done()
		})
	}
}

type nop struct{}

func (nop) SetTotal(int64)   {}
func (nop) SetCurrent(int64) {}
func (nop) Add(int64)        {}
func (nop) Status(string)    {}
func (nop) Done()            {}

// Multi reports to every reporter.
func Multi(rs ...Reporter) Reporter { return multi(rs) }

type multi []Reporter

func (m multi) Start(name string, total int64, unit Unit) Bar {
	bars := make(multiBar, len(m))
	for i, r := range m {
		bars[i] = r.Start(name, total, unit)
	}
	return bars
}

type multiBar []Bar

func (b multiBar) SetTotal(n int64) {
	for _, x := range b {
		x.SetTotal(n)
	}
}

func (b multiBar) SetCurrent(n int64) {
	for _, x := range b {
		x.SetCurrent(n)
	}
}

func (b multiBar) Add(n int64) {
	for _, x := range b {
		x.Add(n)
	}
}

func (b multiBar) Status(s string) {
	for _, x := range b {
		x.Status(s)
	}
}

func (b multiBar) Done() {
	for _, x := range b {
		x.Done()
	}
}

// Log reports to log at DEBUG: a line when a bar starts, at most one every
// interval while it runs, and one when it ends with how long it took.
func Log(log *slog.Logger, every time.Duration) Reporter {
	return &logReporter{log: log, every: every}
}

type logReporter struct {
	log   *slog.Logger
	every time.Duration
}

func (r *logReporter) Start(name string, total int64, unit Unit) Bar {
	b := &logBar{r: r, name: name, total: total, unit: unit, start: time.Now()}
	b.last = b.start
	r.log.Debug("progress started", "step", name, "total", total)
	return b
}

type logBar struct {
	r           *logReporter
	name        string
	unit        Unit
	mu          sync.Mutex
	total, done int64
	status      string
	start, last time.Time
	ended       bool
}

func (b *logBar) SetTotal(n int64) {
	b.mu.Lock()
	b.total = n
	b.mu.Unlock()
}

func (b *logBar) SetCurrent(n int64) { b.update(func() { b.done = n }) }
func (b *logBar) Add(n int64)        { b.update(func() { b.done += n }) }

func (b *logBar) Status(s string) {
	b.update(func() { b.status = s })
}

func (b *logBar) update(fn func()) {
	b.mu.Lock()
	fn()
	now := time.Now()
	due := now.Sub(b.last) >= b.r.every && !b.ended
	if due {
		b.last = now
	}
	done, total, status := b.done, b.total, b.status
	b.mu.Unlock()
	if due {
		b.r.log.Debug("progress", "step", b.name, "done", done, "total", total, "status", status)
	}
}

func (b *logBar) Done() {
	b.mu.Lock()
	ended := b.ended
	b.ended = true
	done := b.done
	b.mu.Unlock()
	if !ended {
		b.r.log.Debug("progress done", "step", b.name, "done", done, "took", time.Since(b.start).Round(time.Millisecond))
	}
}
