package console

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/aminator-go/aminator/internal/ui/progress"
)

// refresh is how often bars are redrawn.
const refresh = 120 * time.Millisecond

var frames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func spinner(d time.Duration) string { return frames[int(d/(refresh))%len(frames)] }

// stageStart draws the running stage's line: its name, a spinner and the
// time so far.
func (c *Console) stageStart(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.closed {
		return
	}
	start := time.Now()
	c.stages[name] = c.progressLocked().New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		d := time.Since(start)
		return "==> " + name + " " + spinner(d) + " " + Duration(d)
	})))
}

// stageEnd replaces the running stage's line by its final one.
func (c *Console) stageEnd(name string, took time.Duration, failed bool) {
	c.mu.Lock()
	b := c.stages[name]
	delete(c.stages, name)
	c.mu.Unlock()
	if b != nil {
		b.Abort(true)
	}
	if failed {
		c.print(c.paint(red, fmt.Sprintf("==> %s failed after %s", name, Duration(took))) + "\n")
		return
	}
	c.print(c.paint(bold, "==> "+name) + "  " + Duration(took) + "\n")
}

// Start draws a progress bar (a spinner when total is unknown) under the
// running stage; it is removed when done.
func (c *Console) Start(name string, total int64, unit progress.Unit) progress.Bar {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.closed {
		return nopBar{}
	}
	b := &bar{c: c, name: name, unit: unit, start: time.Now()}
	b.total.Store(total)
	b.status.Store("")
	var style mpb.BarFillerBuilder = mpb.NopStyle()
	if total > 0 {
		style = mpb.BarStyle()
	}
	b.b = c.progressLocked().New(total, style, mpb.BarWidth(28), mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Any(b.before)), mpb.AppendDecorators(decor.Any(b.after)))
	c.bars[b.b] = true
	return b
}

type bar struct {
	c      *Console
	b      *mpb.Bar
	name   string
	unit   progress.Unit
	start  time.Time
	total  atomic.Int64
	status atomic.Value
	once   sync.Once
}

func (b *bar) before(s decor.Statistics) string {
	text := "    " + b.name
	if st := b.status.Load().(string); st != "" {
		text += ": " + st
	}
	if b.total.Load() <= 0 {
		text += " " + spinner(time.Since(b.start))
	}
	return text + " "
}

func (b *bar) after(s decor.Statistics) string {
	total := b.total.Load()
	switch {
	case b.unit == progress.Duration:
		return fmt.Sprintf(" %s of %s", Duration(time.Duration(s.Current)), Duration(time.Duration(total)))
	case total <= 0:
		return Duration(time.Since(b.start))
	case b.unit == progress.Bytes:
		return fmt.Sprintf(" %s / %s", humanize.IBytes(uint64(s.Current)), humanize.IBytes(uint64(total)))
	}
	return fmt.Sprintf(" %d / %d", s.Current, total)
}

func (b *bar) SetTotal(n int64) {
	b.total.Store(n)
	b.b.SetTotal(n, false)
}

func (b *bar) SetCurrent(n int64) {
	if t := b.total.Load(); t > 0 && n >= t && b.unit == progress.Duration {
		n = t - 1 // a wait ends when the waiting does, not at its limit
	}
	b.b.SetCurrent(n)
}

func (b *bar) Add(n int64)     { b.b.IncrInt64(n) }
func (b *bar) Status(s string) { b.status.Store(s) }

func (b *bar) Done() {
	b.once.Do(func() {
		b.b.Abort(true)
		b.c.mu.Lock()
		delete(b.c.bars, b.b)
		b.c.mu.Unlock()
	})
}

type nopBar struct{}

func (nopBar) SetTotal(int64)   {}
func (nopBar) SetCurrent(int64) {}
func (nopBar) Add(int64)        {}
func (nopBar) Status(string)    {}
func (nopBar) Done()            {}
