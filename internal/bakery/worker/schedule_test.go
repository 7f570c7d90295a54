package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// runWorker runs w until the test ends.
func runWorker(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func pools(m map[string]int) func(context.Context) (map[string]int, error) {
	return func(context.Context) (map[string]int, error) { return m, nil }
}

// Bakes of a base go to the worker that holds it in its pool: the other
// worker of the region, idle and asking first, hands them back while the
// holder has free slots. The regions API shows the pools and nodes.
func TestWorkerLeavesBakesToThePoolHolder(t *testing.T) {
	s := bakerytest.Store(t)
	ctx := context.Background()
	const base = "ami-00000000000000001"
	empty := &Worker{Store: s, Region: "east", Name: "empty", Node: "n1", Runner: &bakerytest.Runner{}, Concurrency: 2, PoolGrace: time.Minute, Pools: pools(nil)}
	runWorker(t, empty)
	holder := &Worker{Store: s, Region: "east", Name: "holder", Node: "n2", Runner: &bakerytest.Runner{}, Concurrency: 8, PoolGrace: time.Minute, Pools: pools(map[string]int{base: 3})}
	runWorker(t, holder)
	for n := 0; n < 50; n++ { // both present
		if ps, _ := s.Presences(ctx, "east"); len(ps) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("b%d", i)
		if _, _, err := s.Submit(ctx, bakery.Request{Package: fmt.Sprintf("app%d", i), BaseID: base, Region: "east"}, base, id); err != nil {
			t.Fatal(err)
		}
		if rec := bakerytest.Wait(t, s, id); rec.State != bakery.Completed || rec.Worker != "holder" {
			t.Errorf("bake %s: %s on %s, want completed on the pool's holder", id, rec.State, rec.Worker)
		}
	}
	// A base no one holds: whoever asks first bakes it.
	if _, _, err := s.Submit(ctx, bakery.Request{Package: "other", BaseID: "ami-00000000000000002", Region: "east"}, "ami-00000000000000002", "o"); err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, "o"); rec.State != bakery.Completed {
		t.Errorf("bake of an unpooled base: %s", rec.State)
	}
	rs, err := s.Regions(ctx, true)
	if err != nil || len(rs) != 1 {
		t.Fatalf("regions %+v %v", rs, err)
	}
	if rs[0].Pools[base] != 3 || len(rs[0].Nodes) != 2 || rs[0].Workers != 2 {
		t.Errorf("region %+v", rs[0])
	}
	if rs, _ := s.Regions(ctx, false); len(rs[0].Nodes) != 0 {
		t.Errorf("a team token sees the nodes: %v", rs[0].Nodes)
	}
}

// A worker does not start a bake while its region runs RegionLimit bakes,
// as its workers advertise them.
func TestWorkerRegionLimit(t *testing.T) {
	s := bakerytest.Store(t)
	ctx := context.Background()
	busy := store.Presence{Name: "elsewhere", Region: "west", Node: "n3", Concurrency: 1, Running: 1}
	if err := s.Announce(ctx, busy); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: s, Region: "west", Name: "w", Runner: &bakerytest.Runner{}, Concurrency: 2, RegionLimit: 1}
	runWorker(t, w)
	if _, _, err := s.Submit(ctx, bakery.Request{Package: "app", BaseID: "ami-00000000000000001", Region: "west"}, "ami-00000000000000001", "x"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if r, _, _ := s.Get(ctx, "x"); r.State != bakery.Queued {
		t.Fatalf("bake started over the region's limit: %s", r.State)
	}
	busy.Running = 0
	if err := s.Announce(ctx, busy); err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, "x"); rec.State != bakery.Completed {
		t.Errorf("bake %s", rec.State)
	}
}

// Draining a worker (stopping it: SIGTERM to aminate serve) stops its
// running bake, which cleans up, and hands it back at once: another worker
// of the region bakes it to completion, as its second attempt.
func TestDrainedWorkersBakeIsTakenOver(t *testing.T) {
	s := bakerytest.Store(t)
	ctx := context.Background()
	rec, _, err := s.Submit(ctx, bakerytest.App("app"), "ami-00000000000000001", "drained")
	if err != nil {
		t.Fatal(err)
	}
	h := &hang{}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { (&Worker{Store: s, Region: "local", Name: "old", Runner: h}).Run(wctx); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r, _, _ := s.Get(ctx, rec.ID); r.State == bakery.Running {
			break
		}
	}
	stop()
	<-done
	if !h.stopped.Load() {
		t.Fatal("the drained worker's bake was not stopped")
	}
	runWorker(t, &Worker{Store: s, Region: "local", Name: "new", Runner: &bakerytest.Runner{}})
	if got := bakerytest.Wait(t, s, rec.ID); got.State != bakery.Completed || got.Worker != "new" || got.Attempts != 2 {
		t.Errorf("the drained bake: %s on %s, attempt %d", got.State, got.Worker, got.Attempts)
	}
}
