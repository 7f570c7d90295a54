package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery/store"
)

// announce writes the worker's presence: its node, how busy it is and
// what its pool holds.
func (w *Worker) announce(ctx context.Context) error {
	p := store.Presence{Name: w.Name, Region: w.Region, Node: w.Node, Concurrency: max(1, w.Concurrency), Running: int(w.busy.Load())}
	if w.Pools != nil {
		if pools, err := w.Pools(ctx); err == nil {
			w.pooled.Store(&pools)
			p.Pools = pools
		} else {
			w.Log.Warn("read the pool", "err", err)
		}
	}
	return w.Store.Announce(ctx, p)
}

// holds says whether this worker has ready pooled volumes of base.
func (w *Worker) holds(base string) bool {
	p := w.pooled.Load()
	return p != nil && (*p)[base] > 0
}

// yield hands a bake back when this worker does not hold its base and a
// live worker of the region that does has a free slot, for at most
// PoolGrace from the first time this worker saw it (and while the message
// has been delivered fewer than MaxDeliveries/2 times); it says whether it did.
func (w *Worker) yield(ctx context.Context, msg jetstream.Msg, id string) bool {
	if w.PoolGrace <= 0 {
		return false
	}
	if meta, err := msg.Metadata(); err != nil || meta.NumDelivered >= uint64(w.MaxDeliveries/2) {
		return false // handed back often enough: no bake is dropped for it
	}
	rec, _, err := w.Store.Get(ctx, id)
	if err != nil || rec.BaseID == "" || rec.Done() || w.holds(rec.BaseID) {
		return false
	}
	first, _ := w.deferred.LoadOrStore(id, time.Now())
	if time.Since(first.(time.Time)) >= w.PoolGrace {
		w.deferred.Delete(id)
		return false
	}
	ps, err := w.Store.Presences(ctx, w.Region)
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.Name != w.Name && p.Pools[rec.BaseID] > 0 && p.Running < p.Concurrency {
			w.Log.Debug("leaving a bake to a worker that holds its base", "bake", id, "to", p.Name)
			w.running.Delete(id) // so that our other slots may take it when it comes back
			msg.Nak()
			sleep(ctx, min(max(w.PoolGrace/2, 500*time.Millisecond), 2*time.Second)) // let that worker fetch it
			return true
		}
	}
	w.deferred.Delete(id)
	return false
}

// regionFull says whether the region runs RegionLimit bakes already, as
// its live workers advertise.
func (w *Worker) regionFull(ctx context.Context) bool {
	if w.RegionLimit <= 0 {
		return false
	}
	ps, err := w.Store.Presences(ctx, w.Region)
	if err != nil {
		return false
	}
	n := 0
	for _, p := range ps {
		if p.Name == w.Name {
			n += int(w.busy.Load()) // ours is current; the others' as of their last announcement
		} else {
			n += p.Running
		}
	}
	return n >= w.RegionLimit
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
