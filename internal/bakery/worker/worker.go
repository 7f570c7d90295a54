// Package worker takes a region's bakes off the store's work queue and
// runs each in a child aminate process (ExecRunner), checking every
// request again (a worker does not trust the queue), sending heartbeats,
// storing the bake's log and stages while it runs, and stopping it on
// cancellation or at its timeout. Workers advertise their presence and
// pools, so a bake goes first to a worker that holds its base.
package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// maxAttempts is how many times a bake is started before it is given up.
const maxAttempts = 3

// Runner performs one bake, writing its log to log.
type Runner interface {
	// Run returns the images the bake made: one, or one per architecture;
	// with an error, those a request for several kept (keep_partial).
	Run(ctx context.Context, r *bakery.Record, log io.Writer) ([]bakery.Image, error)
}

// Worker takes bakes of one region off the queue and runs them.
type Worker struct {
	Store  *store.Store
	Region string
	// Name identifies the worker in records (default: host name and pid).
	Name        string
	Runner      Runner
	Concurrency int
	// PackageDir is the one directory a request's package file may come
	// from ("": none), as the API's: requests are checked again here.
	PackageDir string
	Log        *slog.Logger
	// AckWait is how long a bake may go without a heartbeat before its
	// message goes to another worker (the heartbeat runs every AckWait/3).
	AckWait time.Duration
	// DefaultTimeout and MaxTimeout bound a bake (0: DefaultTimeout,
	// MaxTimeout); at its timeout a bake is stopped and cleans up.
	DefaultTimeout, MaxTimeout time.Duration
	// MaxDeliveries: a message delivered more often is dropped and its
	// bake failed (0: 10).
	MaxDeliveries int
	// QueueTTL: a bake queued longer is failed, not started (0: 24h).
	QueueTTL time.Duration
	// LogFlush is how often a running bake's log and stages are stored
	// for the API to show (0: a second).
	LogFlush time.Duration

	// Node names the host in the worker's presence (default: host name).
	Node string
	// Pools says which base images this worker holds ready volumes of
	// (nil: none); it is advertised in the worker's presence.
	Pools func(context.Context) (map[string]int, error)
	// PoolGrace: a worker without the base of a bake in its pool hands
	// the bake back for this long while a live worker of the region that
	// holds it has a free slot (0: take every bake at once).
	PoolGrace time.Duration
	// RegionLimit caps the bakes running at once in the region, over all
	// its workers as they advertise them (0: no cap beyond Concurrency).
	RegionLimit int
	// Verify checks each image a bake made and its verdict goes into the
	// bake's record (nil: images are not checked).
	Verify Verifier

	running  sync.Map // ids of the bakes this worker runs
	deferred sync.Map // id -> when this worker first handed it back
	busy     atomic.Int64
	pooled   atomic.Pointer[map[string]int]
}

// Defaults of a worker.
const (
	defaultMaxDeliveries = 10
	defaultQueueTTL      = 24 * time.Hour
)

func (w *Worker) policy() bakery.Policy {
	return bakery.Policy{PackageDir: w.PackageDir, DefaultTimeout: w.DefaultTimeout, MaxTimeout: w.MaxTimeout}
}

// Run works until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Name == "" {
		h, _ := os.Hostname()
		w.Name = fmt.Sprintf("%s/%d/%s", h, os.Getpid(), w.Region)
	}
	if w.AckWait == 0 {
		w.AckWait = time.Minute
	}
	if w.MaxDeliveries == 0 {
		w.MaxDeliveries = defaultMaxDeliveries
	}
	if w.QueueTTL == 0 {
		w.QueueTTL = defaultQueueTTL
	}
	if w.Node == "" {
		w.Node, _ = os.Hostname()
	}
	if err := w.announce(ctx); err != nil {
		return fmt.Errorf("worker %s: register: %w", w.Region, err)
	}
	defer w.Store.Gone(context.WithoutCancel(ctx), w.Region, w.Name)
	go w.heartbeat(ctx)
	cons, err := w.Store.JS.CreateOrUpdateConsumer(ctx, store.StreamName, jetstream.ConsumerConfig{
		Durable: "workers-" + w.Region, FilterSubject: store.Subject(w.Region),
		// Deliveries are not limited here (a worker stopping hands its bake
		// back, which must not use up a try); records count attempts.
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.AckWait, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("worker %s: %w", w.Region, err)
	}
	var wg sync.WaitGroup
	for i := 0; i < max(1, w.Concurrency); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if w.regionFull(ctx) {
					sleep(ctx, time.Second)
					continue
				}
				batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
				if err != nil {
					if ctx.Err() == nil {
						w.Log.Warn("fetch", "err", err)
						time.Sleep(time.Second)
					}
					continue
				}
				for msg := range batch.Messages() {
					w.handle(ctx, msg)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// heartbeat keeps the worker in the region's live workers (the API
// refuses requests for a region with none).
func (w *Worker) heartbeat(ctx context.Context) {
	tick := time.NewTicker(store.PresenceTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := w.announce(ctx); err != nil && ctx.Err() == nil {
				w.Log.Warn("worker heartbeat", "err", err)
			}
		}
	}
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	id := string(msg.Data())
	log := w.Log.With("bake", id, "worker", w.Name)
	if meta, err := msg.Metadata(); err == nil && meta.NumDelivered > uint64(w.MaxDeliveries) {
		w.poison(ctx, msg, id, meta.NumDelivered, log)
		return
	}
	if _, dup := w.running.LoadOrStore(id, true); dup {
		// Redelivered while we still run it (our heartbeats did not reach
		// NATS): the running bake acknowledges the message when it ends.
		return
	}
	defer w.running.Delete(id)
	if w.yield(ctx, msg, id) {
		return
	}
	rec, skip, err := w.claim(ctx, id)
	if err != nil {
		if errors.Is(err, bakery.ErrNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			// Nothing will ever make it runnable: drop it, not again and again.
			log.Warn("dropping a queued bake that has no record", "err", err)
			msg.Term()
			return
		}
		log.Error("claim bake", "err", err)
		msg.NakWithDelay(5 * time.Second)
		return
	}
	if skip {
		msg.Ack()
		return
	}
	log.Info("baking", "package", rec.Request.Package, "region", rec.Request.Region)
	w.busy.Add(1)
	w.announce(ctx)
	defer func() { w.busy.Add(-1); w.announce(context.WithoutCancel(ctx)) }()
	timeout := w.policy().Timeout(&rec.Request)
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	watch := &watch{w: w, msg: msg, id: id, claimed: rec.Attempts, cancel: cancel, log: log}
	go watch.run(bctx)
	live := &liveLog{}
	fctx, stopFlush := context.WithCancel(bctx)
	flushed := make(chan struct{})
	go func() { defer close(flushed); w.flushLive(fctx, id, rec.Attempts, live) }()
	images, runErr := w.Runner.Run(bctx, rec, live)
	timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
	stopFlush()
	<-flushed
	cancel()
	logBytes, stages, _ := live.snapshot()
	canceled, lost := watch.outcome()
	if lost {
		return // the other worker records and acknowledges it
	}
	if runErr != nil && ctx.Err() != nil && !canceled {
		// The worker itself is stopping mid-bake: hand it back.
		msg.Nak()
		return
	}
	if runErr == nil {
		w.verify(ctx, msg, rec, images, log)
	}
	// The whole log first: a reader that sees the bake ended has all of it.
	if err := w.retry(ctx, msg, func() error { return w.Store.PutLog(context.WithoutCancel(ctx), id, bytes.NewReader(logBytes)) }); err != nil {
		log.Warn("store log", "err", err)
	}
	var final *bakery.Record
	err = w.retry(ctx, msg, func() (err error) {
		final, err = w.Store.Update(context.WithoutCancel(ctx), id, w.result(runErr, canceled, timedOut, timeout, images, stages))
		return err
	})
	if err != nil {
		log.Error("record result", "err", err)
	}
	msg.Ack()
	if final != nil {
		log.Info("bake ended", "state", final.State, "image", final.ImageID, "err", final.Error)
	}
}

// result is how a bake's outcome changes its record.
func (w *Worker) result(runErr error, canceled, timedOut bool, timeout time.Duration, images []bakery.Image, stages []bakery.Stage) func(*bakery.Record) error {
	return func(r *bakery.Record) error {
		r.Finished, r.Stages = time.Now().UTC(), stages
		switch {
		case runErr == nil && len(images) == 0:
			r.State, r.Error = bakery.Failed, "the bake reported no image"
		case runErr == nil:
			r.State, r.ImageID, r.Image, r.Images = bakery.Completed, images[0].ID, images[0].Name, images
			r.Provenance = provenanceOf(images)
		case canceled:
			r.State, r.Error = bakery.Canceled, "cancelled on request"
		case timedOut:
			r.State, r.Error = bakery.Failed, fmt.Sprintf("timed out after %s: the bake was stopped and cleaned up", timeout)
		default:
			r.State, r.Error, r.Images = bakery.Failed, runErr.Error(), images
		}
		return nil
	}
}

// recordFor is how long a worker tries to record a finished bake while
// NATS is out of its reach (cut off from the cluster's majority), keeping
// the bake's message in progress so that no other worker bakes it again.
const recordFor = 10 * time.Minute

// retry runs fn until it succeeds, recordFor has passed, or (a few tries
// after) the worker stops.
func (w *Worker) retry(ctx context.Context, msg jetstream.Msg, fn func() error) error {
	deadline := time.Now().Add(recordFor)
	for try := 1; ; try++ {
		err := fn()
		if err == nil || errors.Is(err, bakery.ErrNotFound) || time.Now().After(deadline) || (ctx.Err() != nil && try >= 3) {
			return err
		}
		w.Log.Warn("NATS out of reach; trying again", "err", err)
		msg.InProgress()
		time.Sleep(time.Second)
	}
}

// claim marks a bake running on this worker, or says to skip it: it has
// ended, was cancelled, was tried too often, or its request does not pass
// the checks the API made (a worker does not trust the queue: a request
// must not make it read or bake a file of its host).
func (w *Worker) claim(ctx context.Context, id string) (rec *bakery.Record, skip bool, err error) {
	rec, err = w.Store.Update(ctx, id, func(r *bakery.Record) error {
		skip = false
		switch {
		case r.Done():
			skip = true
		case r.Cancel:
			r.State, r.Finished = bakery.Canceled, time.Now().UTC()
			skip = true
		case r.Attempts >= maxAttempts:
			r.State, r.Finished = bakery.Failed, time.Now().UTC()
			r.Error = fmt.Sprintf("gave up after %d attempts (workers died or stopped during the bake)", r.Attempts)
			skip = true
		case r.State == bakery.Queued && time.Since(r.Created) > w.QueueTTL:
			r.State, r.Finished = bakery.Failed, time.Now().UTC()
			r.Error = fmt.Sprintf("expired: queued for more than %s without a worker taking it", w.QueueTTL)
			skip = true
		default: // queued, or running on a worker that died (redelivered)
			if verr := w.check(&r.Request); verr != nil {
				r.State, r.Finished = bakery.Failed, time.Now().UTC()
				r.Error = "refused by the worker: " + verr.Error()
				skip = true
				return nil
			}
			r.State, r.Worker, r.Started, r.Error = bakery.Running, w.Name, time.Now().UTC(), ""
			r.Attempts++
		}
		return nil
	})
	return rec, skip, err
}

// poison drops a message delivered too often and fails its bake.
func (w *Worker) poison(ctx context.Context, msg jetstream.Msg, id string, n uint64, log *slog.Logger) {
	log.Error("dropping a bake delivered too often", "deliveries", n)
	_, err := w.Store.Update(context.WithoutCancel(ctx), id, func(r *bakery.Record) error {
		if !r.Done() {
			r.State, r.Finished = bakery.Failed, time.Now().UTC()
			r.Error = fmt.Sprintf("gave up after %d deliveries of its queue message", n)
		}
		return nil
	})
	if err != nil && !errors.Is(err, bakery.ErrNotFound) {
		log.Warn("record the dropped bake", "err", err)
	}
	msg.Term()
}

// watch sends a running bake's heartbeats and stops it when it is
// cancelled or another worker has taken it over.
type watch struct {
	w       *Worker
	msg     jetstream.Msg
	id      string
	claimed int
	cancel  context.CancelFunc
	log     *slog.Logger

	mu             sync.Mutex
	canceled, lost bool
}

func (h *watch) run(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(last) > h.w.AckWait/3 {
			h.msg.InProgress()
			last = time.Now()
		}
		r, _, err := h.w.Store.Get(ctx, h.id)
		if err != nil {
			continue
		}
		if r.Cancel {
			h.stop(&h.canceled)
			return
		}
		if r.Worker != h.w.Name || r.Attempts != h.claimed {
			// Our heartbeats were late and another worker took the bake.
			h.log.Warn("another worker took over this bake; stopping", "now", r.Worker)
			h.stop(&h.lost)
			return
		}
	}
}

func (h *watch) stop(why *bool) {
	h.mu.Lock()
	*why = true
	h.mu.Unlock()
	h.cancel()
}

// outcome says whether the bake was cancelled on request or lost to
// another worker.
func (h *watch) outcome() (canceled, lost bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.canceled, h.lost
}

// check is the worker's own check of a queued request: the API's policy
// again, and a package file must carry the digest the API pinned.
func (w *Worker) check(r *bakery.Request) error {
	if err := w.policy().Check(r); err != nil {
		return err
	}
	return r.ValidateQueued(w.PackageDir)
}
