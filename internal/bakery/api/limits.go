package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// maxBodyBytes is the default cap of a request's body.
const maxBodyBytes = 64 << 10

// Limits bound what one team may ask of the API.
type Limits struct {
	// Rate is a team's bake requests per minute (Burst at once); Rebakes
	// the same for requests that force a bake.
	Rate, Rebakes      float64
	Burst, RebakeBurst int
	MaxQueued          int // a team's bakes queued or running at once
	RequireLiveWorkers bool
	MaxBody            int64
	DefaultPageSize    int
	MaxPageSize        int
	limiters, rebakers map[string]*rate.Limiter
	mu                 sync.Mutex
}

// DefaultLimits: 30 requests a minute (10 at once), 6 rebakes an hour
// (2 at once), 20 bakes queued or running per team.
func DefaultLimits() *Limits {
	return &Limits{Rate: 30, Burst: 10, Rebakes: 0.1, RebakeBurst: 2, MaxQueued: 20, RequireLiveWorkers: true,
		MaxBody: maxBodyBytes, DefaultPageSize: 50, MaxPageSize: 500}
}

// errLimit is a refusal for a limit (429).
type errLimit struct{ error }

// allow takes a token from the team's bucket (and its rebake bucket).
func (l *Limits) allow(team string, rebake bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limiters == nil {
		l.limiters, l.rebakers = map[string]*rate.Limiter{}, map[string]*rate.Limiter{}
	}
	get := func(m map[string]*rate.Limiter, perMinute float64, burst int) *rate.Limiter {
		if m[team] == nil {
			m[team] = rate.NewLimiter(rate.Limit(perMinute/60), max(1, burst))
		}
		return m[team]
	}
	if rebake && !get(l.rebakers, l.Rebakes, l.RebakeBurst).Allow() {
		return errLimit{fmt.Errorf("team %s: too many rebakes (%g a minute); try again later or without rebake", team, l.Rebakes)}
	}
	if !get(l.limiters, l.Rate, l.Burst).Allow() {
		return errLimit{fmt.Errorf("team %s: too many requests (%g a minute); try again later", team, l.Rate)}
	}
	return nil
}

// checkQueued refuses a team's request while it has MaxQueued bakes
// queued or running.
func (l *Limits) checkQueued(ctx context.Context, s *store.Store, team string) error {
	if l.MaxQueued <= 0 {
		return nil
	}
	all, err := s.All(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, r := range all {
		if r.Team == team && !r.Done() {
			n++
		}
	}
	if n >= l.MaxQueued {
		return errLimit{fmt.Errorf("team %s has %d bakes queued or running, its quota; wait for some to end", team, n)}
	}
	return nil
}

// bakesPage is one page of a list, newest first; Next fetches the next.
type bakesPage struct {
	Bakes []*bakery.Record `json:"bakes"`
	Next  string           `json:"next,omitempty"`
}

// paginate returns the records after the cursor (all when ""), at most
// limit, and the cursor of the next page.
func paginate(recs []*bakery.Record, cursor string, limit int) (bakesPage, error) {
	start := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		ts, id, ok := strings.Cut(string(b), "|")
		t, terr := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !ok || terr != nil {
			return bakesPage{}, fmt.Errorf("bad cursor %q", cursor)
		}
		mark := &bakery.Record{ID: id, Created: t}
		for start < len(recs) && !bakery.Newer(mark, recs[start]) {
			start++
		}
	}
	recs = recs[start:]
	p := bakesPage{Bakes: recs}
	if len(recs) > limit {
		p.Bakes = recs[:limit]
		last := p.Bakes[limit-1]
		p.Next = base64.RawURLEncoding.EncodeToString([]byte(last.Created.Format(time.RFC3339Nano) + "|" + last.ID))
	}
	if p.Bakes == nil {
		p.Bakes = []*bakery.Record{}
	}
	return p, nil
}
