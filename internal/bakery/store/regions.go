package store

import (
	"context"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
)

// RegionStatus is a region's queue and workers as the dashboard shows
// them: live workers from their bucket, the queue's depth from its
// stream. Worker names (host/pid) are shown to admin tokens only.
type RegionStatus struct {
	Region string `json:"region"`
	// Workers is how many workers of the region are alive.
	Workers     int      `json:"workers"`
	WorkerNames []string `json:"worker_names,omitempty"`
	// Queued is how many bakes wait for a worker; Running how many are
	// baking (every team's: a team judges its wait by them).
	Queued  int `json:"queued"`
	Running int `json:"running"`
	// Nodes are the hosts the region's workers run on (admin tokens only).
	Nodes []string `json:"nodes,omitempty"`
	// Pools: ready pooled volumes by base image id, over the region's workers.
	Pools map[string]int `json:"pools,omitempty"`
}

// Workers lists the live workers by region.
func (s *Store) Workers(ctx context.Context) (map[string][]Presence, error) {
	ps, err := s.Presences(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]Presence{}
	for _, p := range ps {
		out[p.Region] = append(out[p.Region], p)
	}
	return out, nil
}

// QueueDepths counts the queue's messages by region: the bakes queued
// and those running (a message stays until its bake ends).
func (s *Store) QueueDepths(ctx context.Context) (map[string]int, error) {
	st, err := s.JS.Stream(ctx, StreamName)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subjectStem+">"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, subjectStem)] = int(n)
	}
	return out, nil
}

// Regions is every region with live workers, queued messages or bakes
// running, sorted.
func (s *Store) Regions(ctx context.Context, admin bool) ([]RegionStatus, error) {
	workers, err := s.Workers(ctx)
	if err != nil {
		return nil, err
	}
	depth, err := s.QueueDepths(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]*RegionStatus{}
	get := func(r string) *RegionStatus {
		if by[r] == nil {
			by[r] = &RegionStatus{Region: r}
		}
		return by[r]
	}
	for r, ps := range workers {
		rs := get(r)
		rs.Workers = len(ps)
		nodes := map[string]bool{}
		for _, p := range ps {
			if admin {
				rs.WorkerNames = append(rs.WorkerNames, p.Name)
				if p.Node != "" && !nodes[p.Node] {
					nodes[p.Node] = true
					rs.Nodes = append(rs.Nodes, p.Node)
				}
			}
			for base, n := range p.Pools {
				if rs.Pools == nil {
					rs.Pools = map[string]int{}
				}
				rs.Pools[base] += n
			}
		}
		sort.Strings(rs.WorkerNames)
		sort.Strings(rs.Nodes)
	}
	for _, rec := range all {
		if rec.State == bakery.Running {
			get(rec.Request.Region).Running++
		}
	}
	for r, n := range depth {
		rs := get(r)
		rs.Queued = max(0, n-rs.Running)
	}
	out := make([]RegionStatus, 0, len(by))
	for _, rs := range by {
		out = append(out, *rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out, nil
}
