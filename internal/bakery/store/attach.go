package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attach connects to a bakery's store as it is, creating nothing and
// changing no limits (for the administration commands, which must not
// undo the retention aminate serve was given).
func Attach(ctx context.Context, nc *nats.Conn) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &Store{JS: js}
	for bucket, kv := range map[string]*jetstream.KeyValue{RecordBucket: &s.records, keyBucket: &s.keys, tokenBucket: &s.tokens, workerBucket: &s.workers} {
		if *kv, err = js.KeyValue(ctx, bucket); err != nil {
			return nil, fmt.Errorf("no bakery on this NATS (aminate serve makes it): bucket %s: %w", bucket, err)
		}
	}
	if s.logs, err = js.ObjectStore(ctx, logBucket); err != nil {
		return nil, fmt.Errorf("no bakery on this NATS: bake logs: %w", err)
	}
	if s.audit, err = js.Stream(ctx, AuditStream); err != nil {
		return nil, fmt.Errorf("no bakery on this NATS: audit log: %w", err)
	}
	return s, nil
}
