package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// startWorker runs a worker until the test ends.
func startWorker(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// inject writes a record and queues it straight in NATS, as anyone
// holding the NATS credentials could, bypassing the API.
func inject(t *testing.T, s *store.Store, rec bakery.Record) {
	t.Helper()
	ctx := context.Background()
	rec.State, rec.Created = bakery.Queued, time.Now().UTC()
	b, _ := json.Marshal(rec)
	records, err := s.JS.KeyValue(ctx, store.RecordBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := records.Put(ctx, rec.ID, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JS.Publish(ctx, store.Subject(rec.Request.Region), []byte(rec.ID)); err != nil {
		t.Fatal(err)
	}
}

// Records written straight to NATS are checked as the API checks
// requests; each refusal says why in the record, and none runs.
func TestWorkerRefusesInjectedRecords(t *testing.T) {
	s := bakerytest.Store(t)
	r := &bakerytest.Runner{}
	dir := t.TempDir()
	startWorker(t, &Worker{Store: s, Region: "local", Runner: r, PackageDir: dir, MaxTimeout: time.Hour})
	tags, ci := map[string]string{}, map[string]string{}
	for i := range bakery.MaxTags + 1 {
		tags[fmt.Sprint("t", i)] = "v"
		ci[fmt.Sprint("c", i)] = "v"
	}
	for id, c := range map[string]struct {
		req bakery.Request
		why string
	}{
		"outside":  {bakery.Request{Package: "/etc/shadow"}, "must be a clean absolute path under"},
		"dotdot":   {bakery.Request{Package: filepath.Join(dir, "../../etc/shadow")}, "must be a clean absolute path under"},
		"channel":  {bakery.Request{Package: "app", Tags: map[string]string{"channel": "release"}}, `tag "channel" is set by aminator`},
		"manytags": {bakery.Request{Package: "app", Tags: tags}, "at most 50"},
		"manyci":   {bakery.Request{Package: "app", CI: ci}, "at most 20"},
		"longname": {bakery.Request{Package: "app", Name: strings.Repeat("n", 2000)}, "at most 1024 bytes"},
		"timeout":  {bakery.Request{Package: "app", TimeoutSeconds: 7200}, "over this bakery's maximum of 3600"},
		"option":   {bakery.Request{Package: "--force-yes"}, "must not start with '-'"},
	} {
		c.req.BaseID, c.req.Region = "ami-00000000000000001", "local"
		inject(t, s, bakery.Record{ID: id, Request: c.req})
		if rec := bakerytest.Wait(t, s, id); rec.State != bakery.Failed || !strings.Contains(rec.Error, "refused by the worker: ") || !strings.Contains(rec.Error, c.why) {
			t.Errorf("%s ended %s: %q", id, rec.State, rec.Error)
		}
	}
	if len(r.Ran()) != 0 {
		t.Errorf("ran %v", r.Ran())
	}
}

// hang is a bake that never ends by itself: it waits for its context,
// as a hung package script's bake waits for SIGTERM.
type hang struct{ stopped atomic.Bool }

func (h *hang) Run(ctx context.Context, _ *bakery.Record, _ io.Writer) ([]bakery.Image, error) {
	<-ctx.Done()
	h.stopped.Store(true)
	return nil, fmt.Errorf("cancelled: %w", ctx.Err())
}

// A hung bake is stopped at its timeout (its heartbeats do not keep it
// alive) and failed with the reason.
func TestWorkerTimesOutAHungBake(t *testing.T) {
	s := bakerytest.Store(t)
	h := &hang{}
	startWorker(t, &Worker{Store: s, Region: "local", Runner: h, AckWait: 3 * time.Second})
	req := bakerytest.App("app")
	req.TimeoutSeconds = 2
	rec, _, err := s.Submit(context.Background(), req, "ami-00000000000000001", "hung")
	if err != nil {
		t.Fatal(err)
	}
	got := bakerytest.Wait(t, s, rec.ID)
	if got.State != bakery.Failed || !strings.Contains(got.Error, "timed out after 2s") || !h.stopped.Load() {
		t.Errorf("the hung bake ended %s: %q (stopped %v)", got.State, got.Error, h.stopped.Load())
	}
	if d := got.Finished.Sub(got.Started); d < 2*time.Second {
		t.Errorf("it ended after %s", d)
	}
}

// A queued message whose record does not exist is dropped at once, not
// redelivered in a loop; a message delivered too often is dropped and
// its bake failed.
func TestWorkerDropsPoisonMessages(t *testing.T) {
	s := bakerytest.Store(t)
	ctx := context.Background()
	for _, id := range []string{"gone", "not a key!"} {
		if _, err := s.JS.Publish(ctx, store.Subject("local"), []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	// A worker stops mid-bake: it hands the bake back (a delivery).
	h := &hang{}
	rec, _, _ := s.Submit(ctx, bakerytest.App("app"), "ami-00000000000000001", "poison")
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { (&Worker{Store: s, Region: "local", Runner: h}).Run(wctx); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); !h.stopped.Load() && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, _, _ := s.Get(ctx, rec.ID); r.State == bakery.Running {
			stop()
		}
	}
	stop()
	<-done
	r := &bakerytest.Runner{}
	startWorker(t, &Worker{Store: s, Region: "local", Runner: r, MaxDeliveries: 1})
	if got := bakerytest.Wait(t, s, rec.ID); got.State != bakery.Failed || !strings.Contains(got.Error, "gave up after 2 deliveries") {
		t.Errorf("the poison bake ended %s: %q", got.State, got.Error)
	}
	time.Sleep(2 * time.Second)
	info, err := s.JS.Consumer(ctx, store.StreamName, "workers-local")
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := info.Info(ctx)
	// Three messages: the two orphans once each, the poison one twice.
	if ci.Delivered.Consumer != 4 || ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Errorf("deliveries %d, pending acks %d, pending %d", ci.Delivered.Consumer, ci.NumAckPending, ci.NumPending)
	}
	if len(r.Ran()) != 0 {
		t.Errorf("ran %v", r.Ran())
	}
}

// A bake that waited in the queue longer than the worker's QueueTTL (its
// region had no worker) is failed with the reason, not started late.
func TestWorkerExpiresStaleBakes(t *testing.T) {
	s := bakerytest.Store(t)
	rec, _, err := s.Submit(context.Background(), bakerytest.App("app"), "ami-00000000000000001", "stale")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	r := &bakerytest.Runner{}
	startWorker(t, &Worker{Store: s, Region: "local", Runner: r, QueueTTL: 10 * time.Millisecond})
	if got := bakerytest.Wait(t, s, rec.ID); got.State != bakery.Failed || !strings.Contains(got.Error, "expired: queued for more than 10ms") {
		t.Errorf("the stale bake ended %s: %q", got.State, got.Error)
	}
	if len(r.Ran()) != 0 {
		t.Errorf("ran %v", r.Ran())
	}
}
