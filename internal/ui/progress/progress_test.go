package progress

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Start(name string, total int64, unit Unit) Bar {
	r.add("start " + name)
	return &recBar{r: r}
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

type recBar struct{ r *recorder }

func (b *recBar) SetTotal(int64)     {}
func (b *recBar) SetCurrent(n int64) { b.r.add("current") }
func (b *recBar) Add(int64)          { b.r.add("add") }
func (b *recBar) Status(s string)    { b.r.add("status " + s) }
func (b *recBar) Done()              { b.r.add("done") }

func TestNoReporterIsANoOp(t *testing.T) {
	b := Start(context.Background(), "x", 10, Bytes)
	b.Add(5)
	b.Done()
	Wait(context.Background(), "y", time.Second)()
}

func TestContextReporterAndMulti(t *testing.T) {
	r1, r2 := &recorder{}, &recorder{}
	ctx := With(context.Background(), Multi(r1, r2))
	b := Start(ctx, "store", 10, Bytes)
	b.Add(5)
	b.Status("reading")
	b.Done()
	for _, r := range []*recorder{r1, r2} {
		if got := strings.Join(r.events, ","); got != "start store,add,status reading,done" {
			t.Errorf("events %s", got)
		}
	}
}

func TestWaitTicksUntilDone(t *testing.T) {
	r := &recorder{}
	done := Wait(With(context.Background(), r), "boot", time.Minute)
	time.Sleep(1100 * time.Millisecond)
	done()
	done() // twice is fine
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := strings.Join(r.events, ","); got != "start boot,current,done" {
		t.Errorf("events %s", got)
	}
}

func TestLogReporterIsOccasional(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := Log(log, time.Hour).Start("storing snapshot", 100, Bytes)
	for i := 0; i < 100; i++ {
		b.Add(1)
	}
	b.Done()
	b.Done()
	text := out.String()
	if n := strings.Count(text, "\n"); n != 2 {
		t.Errorf("%d lines, want a start and an end:\n%s", n, text)
	}
	if !strings.Contains(text, `msg="progress done" step="storing snapshot" done=100`) {
		t.Errorf("no end line:\n%s", text)
	}
}
