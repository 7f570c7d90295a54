package bakery

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Retention caps what JetStream keeps: every stream, bucket and object
// store has a size cap, and all but the tokens a maximum age.
type Retention struct {
	// Records and their identity keys, the logs, queued messages, the audit log.
	Records, Logs, Queue, Audit                               time.Duration
	RecordBytes, LogBytes, QueueBytes, AuditBytes, TokenBytes int64
	// Replicas is how many copies a JetStream cluster keeps of each
	// stream, bucket and object store (0: 1; see DefaultReplicas).
	Replicas int
}

// DefaultRetention keeps records and logs 30 days, queued messages 7
// days and the audit log a year.
func DefaultRetention() Retention {
	const day = 24 * time.Hour
	return Retention{Records: 30 * day, Logs: 30 * day, Queue: 7 * day, Audit: 365 * day,
		RecordBytes: 256 << 20, LogBytes: 4 << 30, QueueBytes: 64 << 20, AuditBytes: 256 << 20, TokenBytes: 16 << 20}
}

// Sizes a request may have.
const (
	MaxTags      = 50
	MaxCI        = 20
	maxValueLen  = 256
	maxFieldLen  = 1024
	MaxBodyBytes = 64 << 10
)

// checkSizes bounds the request's strings and maps.
func (r *Request) checkSizes() error {
	for _, s := range []string{r.Package, r.BaseID, r.BaseName, r.BaseLabel, r.Environment, r.Name, r.VMType} {
		if len(s) > maxFieldLen {
			return fmt.Errorf("%.40q...: fields are at most %d bytes", s, maxFieldLen)
		}
	}
	if len(r.Tags) > MaxTags {
		return fmt.Errorf("%d tags: at most %d", len(r.Tags), MaxTags)
	}
	if len(r.CI) > MaxCI {
		return fmt.Errorf("%d ci entries: at most %d", len(r.CI), MaxCI)
	}
	for _, m := range []map[string]string{r.Tags, r.CI} {
		for k, v := range m {
			if len(v) > maxValueLen {
				return fmt.Errorf("tag %q: values are at most %d bytes", k, maxValueLen)
			}
		}
	}
	if r.TimeoutSeconds < 0 {
		return errors.New("timeout_seconds must not be negative")
	}
	return nil
}

// Timeouts of a bake.
const (
	DefaultTimeout = 60 * time.Minute
	MaxTimeout     = 6 * time.Hour
)

// Policy is what the API and the workers both check a request against.
type Policy struct {
	// PackageDir: the one directory local package files may come from ("": none).
	PackageDir string
	// DefaultTimeout and MaxTimeout bound a bake (0: the package's defaults).
	DefaultTimeout, MaxTimeout time.Duration
}

// Check validates a request under the policy.
func (p Policy) Check(r *Request) error {
	if err := r.Validate(p.PackageDir); err != nil {
		return err
	}
	if t, limit := time.Duration(r.TimeoutSeconds)*time.Second, p.maxTimeout(); t > limit {
		return fmt.Errorf("timeout_seconds %d is over this bakery's maximum of %d", r.TimeoutSeconds, int(limit.Seconds()))
	}
	return nil
}

func (p Policy) maxTimeout() time.Duration {
	if p.MaxTimeout > 0 {
		return p.MaxTimeout
	}
	return MaxTimeout
}

// Timeout is how long a request's bake may run.
func (p Policy) Timeout(r *Request) time.Duration {
	if r.TimeoutSeconds > 0 {
		return min(time.Duration(r.TimeoutSeconds)*time.Second, p.maxTimeout())
	}
	if p.DefaultTimeout > 0 {
		return min(p.DefaultTimeout, p.maxTimeout())
	}
	return min(DefaultTimeout, p.maxTimeout())
}

// teamKey makes a request key a team's own.
func teamKey(team, key string) string {
	if team == "" {
		return key
	}
	sum := sha256.Sum256([]byte(team + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

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
		MaxBody: MaxBodyBytes, DefaultPageSize: 50, MaxPageSize: 500}
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
func (l *Limits) checkQueued(ctx context.Context, s *Store, team string) error {
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

// Page is one page of a list, newest first; Next fetches the next.
type Page struct {
	Bakes []*Record `json:"bakes"`
	Next  string    `json:"next,omitempty"`
}

// Paginate returns the records after the cursor (all when ""), at most
// limit, and the cursor of the next page.
func Paginate(recs []*Record, cursor string, limit int) (Page, error) {
	start := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		ts, id, ok := strings.Cut(string(b), "|")
		t, terr := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !ok || terr != nil {
			return Page{}, fmt.Errorf("bad cursor %q", cursor)
		}
		mark := &Record{ID: id, Created: t}
		for start < len(recs) && !newer(mark, recs[start]) {
			start++
		}
	}
	recs = recs[start:]
	p := Page{Bakes: recs}
	if len(recs) > limit {
		p.Bakes = recs[:limit]
		last := p.Bakes[limit-1]
		p.Next = base64.RawURLEncoding.EncodeToString([]byte(last.Created.Format(time.RFC3339Nano) + "|" + last.ID))
	}
	if p.Bakes == nil {
		p.Bakes = []*Record{}
	}
	return p, nil
}
