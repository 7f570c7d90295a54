package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PresenceTTL: each live worker writes its presence under its region
// every PresenceTTL/3; the bucket forgets one that stops.
const PresenceTTL = 30 * time.Second

func workerKey(region, name string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	return region + "." + clean
}

// Presence is what a live worker advertises: where it runs, how busy it
// is, and the base images it holds ready volumes of (its pool), so that
// a bake of a base goes first to a worker that holds it.
type Presence struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// Node is the host (or NATS member) the worker runs on.
	Node        string `json:"node,omitempty"`
	Concurrency int    `json:"concurrency"`
	Running     int    `json:"running"`
	// Pools: ready pooled volumes by base image id.
	Pools map[string]int `json:"pools,omitempty"`
}

// Alive records a worker of a region as alive.
func (s *Store) Alive(ctx context.Context, region, name string) error {
	return s.Announce(ctx, Presence{Name: name, Region: region})
}

// Announce records a worker as alive, with what it holds.
func (s *Store) Announce(ctx context.Context, p Presence) error {
	b, _ := json.Marshal(p)
	_, err := s.workers.Put(ctx, workerKey(p.Region, p.Name), b)
	return err
}

// Presences lists the live workers of a region ("": of all).
func (s *Store) Presences(ctx context.Context, region string) ([]Presence, error) {
	filter := ">"
	if region != "" {
		filter = region + ".*"
	}
	keys, err := s.workers.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Presence
	for k := range keys.Keys() {
		e, err := s.workers.Get(ctx, k)
		if err != nil {
			continue
		}
		var p Presence
		if json.Unmarshal(e.Value(), &p) != nil { // a worker of an older release: its name
			r, _, _ := strings.Cut(k, ".")
			p = Presence{Name: string(e.Value()), Region: r}
		}
		out = append(out, p)
	}
	return out, nil
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
