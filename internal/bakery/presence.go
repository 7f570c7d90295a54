package bakery

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Live workers: each worker writes its name under its region every
// workerTTL/3; the bucket forgets one that stops.
const workerTTL = 30 * time.Second

func workerKey(region, name string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	return region + "." + clean
}

// Alive records a worker of a region as alive.
func (s *Store) Alive(ctx context.Context, region, name string) error {
	_, err := s.workers.Put(ctx, workerKey(region, name), []byte(name))
	return err
}

// Gone forgets a worker that stops.
func (s *Store) Gone(ctx context.Context, region, name string) {
	s.workers.Delete(ctx, workerKey(region, name))
}

// LiveWorkers says how many workers of a region are alive.
func (s *Store) LiveWorkers(ctx context.Context, region string) (int, error) {
	keys, err := s.workers.ListKeysFiltered(ctx, region+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n, nil
}
