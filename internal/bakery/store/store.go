// Package store is the bakery's shared state on NATS JetStream, shared
// by all API servers and workers: a work queue per region carries bake
// ids to the workers, a key-value bucket holds every bake's record and
// another the identity keys that collapse identical requests, an object
// store the bakes' logs; the API tokens (their hashes), the live workers'
// presence and the audit log live beside them.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
)

// Names in JetStream: the work queue's stream, its subjects, the buckets.
const (
	StreamName  = "AMINATOR_BAKES"
	subjectStem = "aminator.bake."
	// RecordBucket holds the records by bake id.
	RecordBucket = "aminator-bakes"
	keyBucket    = "aminator-bake-keys"
	logBucket    = "aminator-bake-logs"
	tokenBucket  = "aminator-bakery-tokens"
	workerBucket = "aminator-bakery-workers"
)

// Subject is the work queue's subject of a region's bakes: its messages
// are bake ids.
func Subject(region string) string { return subjectStem + region }

// Store is the shared state: the queue, the records, the logs, the API
// tokens, the live workers and the audit log.
type Store struct {
	JS      jetstream.JetStream
	records jetstream.KeyValue
	keys    jetstream.KeyValue
	logs    jetstream.ObjectStore
	tokens  jetstream.KeyValue
	workers jetstream.KeyValue
	audit   jetstream.Stream
	// Logger gets the audit entries too (nil: slog's default).
	Logger *slog.Logger
}

// Open connects the store with the default retention (DefaultRetention).
func Open(ctx context.Context, nc *nats.Conn) (*Store, error) {
	return OpenWith(ctx, nc, DefaultRetention())
}

// OpenWith connects the store, creating (or updating the limits of) the
// streams, buckets and object store: each has a size cap and, but for the
// tokens, a maximum age.
func OpenWith(ctx context.Context, nc *nats.Conn, ret Retention) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: StreamName, Subjects: []string{subjectStem + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew,
		MaxAge: ret.Queue, MaxBytes: ret.QueueBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("bake queue: %w", err)
	}
	s := &Store{JS: js}
	kv := func(bucket string, ttl time.Duration, maxBytes int64) (jetstream.KeyValue, error) {
		b, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: ttl, MaxBytes: maxBytes, Replicas: ret.Replicas})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", bucket, err)
		}
		return b, nil
	}
	if s.records, err = kv(RecordBucket, ret.Records, ret.RecordBytes); err != nil {
		return nil, err
	}
	if s.keys, err = kv(keyBucket, ret.Records, ret.RecordBytes); err != nil {
		return nil, err
	}
	if s.tokens, err = kv(tokenBucket, 0, ret.TokenBytes); err != nil {
		return nil, err
	}
	if s.workers, err = kv(workerBucket, PresenceTTL, ret.TokenBytes); err != nil {
		return nil, err
	}
	if s.logs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: logBucket, TTL: ret.Logs, MaxBytes: ret.LogBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("bake logs: %w", err)
	}
	if s.audit, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: AuditStream, Subjects: []string{auditStem + ">"},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld, MaxAge: ret.Audit, MaxBytes: ret.AuditBytes, Replicas: ret.Replicas}); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return s, nil
}

// Get reads a record.
func (s *Store) Get(ctx context.Context, id string) (*bakery.Record, uint64, error) {
	e, err := s.records.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, fmt.Errorf("no bake %s: %w", id, bakery.ErrNotFound)
		}
		return nil, 0, err
	}
	var r bakery.Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, err
	}
	return &r, e.Revision(), nil
}

// Update changes a record with optimistic concurrency: fn is applied to
// the latest version until it is stored without a conflict.
func (s *Store) Update(ctx context.Context, id string, fn func(*bakery.Record) error) (*bakery.Record, error) {
	for attempt := 0; attempt < 20; attempt++ {
		r, rev, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(r)
		if _, err := s.records.Update(ctx, id, b, rev); err == nil {
			return r, nil
		} else if !isConflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("bake %s: too many concurrent updates", id)
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// Submit records and queues a request, or returns the bake an identical
// request already has (running, queued, or done successfully). cached
// says which. The record exists before its key points to it, and the
// client going away does not interrupt the submission half-way.
func (s *Store) Submit(ctx context.Context, req bakery.Request, baseID, id string) (rec *bakery.Record, cached bool, err error) {
	return s.SubmitAs(ctx, Identity{}, req, baseID, id)
}

// SubmitAs is Submit for a team: its bakes are its own, and identical
// requests of two teams are two bakes (one team's cache must not tell it
// what another bakes).
func (s *Store) SubmitAs(ctx context.Context, who Identity, req bakery.Request, baseID, id string) (rec *bakery.Record, cached bool, err error) {
	ctx = context.WithoutCancel(ctx)
	key := bakery.TeamKey(who.Team, bakery.Key(req, baseID))
	rec = &bakery.Record{ID: id, Key: key, Team: who.Team, TokenID: who.TokenID, Request: req, BaseID: baseID, State: bakery.Queued, Created: time.Now().UTC()}
	created := false
	defer func() {
		if created && (err != nil || cached) {
			s.records.Delete(ctx, id) // ours lost the race, or failed
		}
	}()
	for attempt := 0; attempt < 10; attempt++ {
		e, err := s.keys.Get(ctx, key)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, false, err
		default:
			prev, _, gerr := s.Get(ctx, string(e.Value()))
			if gerr == nil && !req.Rebake && (!prev.Done() || prev.State == bakery.Completed) {
				return prev, true, nil
			}
			rev = e.Revision()
		}
		if !created {
			b, _ := json.Marshal(rec)
			if _, err := s.records.Create(ctx, id, b); err != nil {
				return nil, false, err
			}
			created = true
		}
		if rev == 0 {
			_, err = s.keys.Create(ctx, key, []byte(id))
		} else {
			_, err = s.keys.Update(ctx, key, []byte(id), rev)
		}
		if err != nil {
			if isConflict(err) {
				continue // another request took the key: look again
			}
			return nil, false, err
		}
		if _, err := s.JS.Publish(ctx, Subject(req.Region), []byte(id)); err != nil {
			s.Update(ctx, id, func(r *bakery.Record) error {
				r.State, r.Error, r.Finished = bakery.Failed, "could not queue: "+err.Error(), time.Now().UTC()
				return nil
			})
			created = false // keep the failed record: the key points to it
			return nil, false, fmt.Errorf("queue bake %s: %w", id, err)
		}
		return rec, false, nil
	}
	return nil, false, errors.New("too many concurrent identical requests")
}

// All returns every record, newest first.
func (s *Store) All(ctx context.Context) ([]*bakery.Record, error) {
	keys, err := s.records.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []*bakery.Record
	for k := range keys.Keys() {
		if r, _, err := s.Get(ctx, k); err == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return bakery.Newer(out[i], out[j]) })
	return out, nil
}

// Cancel asks the worker running a bake to stop it (or marks a queued one
// cancelled so no worker starts it).
func (s *Store) Cancel(ctx context.Context, id string) (*bakery.Record, error) {
	return s.Update(ctx, id, func(r *bakery.Record) error {
		if r.Done() {
			return fmt.Errorf("bake %s already %s", id, r.State)
		}
		r.Cancel = true
		if r.State == bakery.Queued {
			r.State, r.Finished = bakery.Canceled, time.Now().UTC()
		}
		return nil
	})
}

// PutLog stores a bake's log.
func (s *Store) PutLog(ctx context.Context, id string, r io.Reader) error {
	_, err := s.logs.Put(ctx, jetstream.ObjectMeta{Name: id}, r)
	return err
}

// Log reads a bake's log.
func (s *Store) Log(ctx context.Context, id string) ([]byte, error) {
	b, err := s.logs.GetBytes(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("no log for bake %s yet: %w", id, bakery.ErrNotFound)
	}
	return b, err
}
