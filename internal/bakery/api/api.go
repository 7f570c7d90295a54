// Package api is the bakery's HTTP interface: the routes (described by
// the OpenAPI document served beside them), the guard every request goes
// through (Host header, JSON bodies, body size), bearer tokens, TLS and
// mutual TLS, the teams' limits, the list filters and pages, and the
// dashboard's views of regions and images. It queues requests in the
// store; it never bakes.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/store"
	"github.com/aminator-go/aminator/internal/plugin"
)

// API is the bakery's HTTP interface. Every call but the dashboard's
// page needs "Authorization: Bearer TOKEN" (see store.Store.CreateToken);
// a team's token sees, cancels and reads the logs of its own team's bakes only,
// an admin's token all of them.
//
//	POST /api/v1/bakes               bake (202; 200 with "cached" when an identical bake exists)
//	GET  /api/v1/bakes               a page of bakes, newest first (?limit=N&after=CURSOR&state=&region=&package=[&team=T for admins])
//	GET  /api/v1/bakes/{id}          one bake, with its stages so far
//	GET  /api/v1/bakes/{id}/logs     its log, so far while it runs (?offset=N)
//	POST /api/v1/bakes/{id}/cancel   cancel it
//	GET  /api/v1/regions             each region's live workers and queue
//	GET  /api/v1/images?region=R     the region's families: channels, images, lineage
//	GET  /api/v1/whoami              the token's team
//	GET  /api/v1/audit               the audit log (admins; ?limit=N)
//	GET  /api/v1/openapi.json        the OpenAPI document of all this (no token)
//	GET  /                           the dashboard (asks for a token; routes lists its files)
//
// Before any of that: the Host header must name one of Hosts (403; a page
// on another site cannot reach the API by rebinding its name to this
// address), and a request body must be application/json (415; an HTML
// form cannot send it) of at most Limits.MaxBody bytes (413).
type API struct {
	Store *store.Store
	// Resolve finds the base image a request names (in its region) and
	// returns its id; an error is the requester's.
	Resolve func(ctx context.Context, r bakery.Request) (string, error)
	NewID   func() string
	Log     *slog.Logger
	// PackageDir is the one directory local package files may come from
	// ("": none; requests name repository packages or URLs).
	PackageDir string
	// DefaultTimeout and MaxTimeout bound a bake (0: DefaultTimeout, MaxTimeout).
	DefaultTimeout, MaxTimeout time.Duration
	// Hosts are the host names (or addresses) the Host header may carry,
	// without ports; none: every request is refused.
	Hosts []string
	// Limits (nil: DefaultLimits).
	Limits *Limits
	// Images lists a region's foundation, base and app images for the
	// dashboard's families and lineage (nil: GET /api/v1/images fails).
	Images func(ctx context.Context, region string) ([]*plugin.Image, error)
}

func (a *API) policy() bakery.Policy {
	return bakery.Policy{PackageDir: a.PackageDir, DefaultTimeout: a.DefaultTimeout, MaxTimeout: a.MaxTimeout}
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Refusals and their status codes.
type (
	badRequest   struct{ error }
	errForbidden struct{ error }
	errNoWorkers struct{ error }
)

func (a *API) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var (
		be badRequest
		fe errForbidden
		le errLimit
		ne errNoWorkers
		me *http.MaxBytesError
	)
	switch {
	case errors.Is(err, bakery.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrUnauthorized):
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="aminator bakery"`)
	case errors.As(err, &me):
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &be):
		code = http.StatusBadRequest
	case errors.As(err, &fe):
		code = http.StatusForbidden
	case errors.As(err, &le):
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", "60")
	case errors.As(err, &ne):
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, apiError{Error: err.Error()})
}

// SubmitResponse is the answer to a bake request.
type SubmitResponse struct {
	Bake   *bakery.Record `json:"bake"`
	Cached bool           `json:"cached"`
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	who := identity(r)
	var req bakery.Request
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var me *http.MaxBytesError
		if !errors.As(err, &me) {
			err = badRequest{err}
		}
		a.fail(w, err)
		return
	}
	if err := a.admit(r.Context(), who, &req); err != nil {
		a.fail(w, err)
		return
	}
	if err := req.PinPackage(a.PackageDir); err != nil {
		a.fail(w, badRequest{err})
		return
	}
	base, err := a.Resolve(r.Context(), req)
	if err != nil {
		a.fail(w, badRequest{err})
		return
	}
	rec, cached, err := a.Store.SubmitAs(r.Context(), who, req, base, a.NewID())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.Store.Audit(r.Context(), store.AuditEntry{Actor: who.Actor(), Team: who.Team, Action: "submit", Target: rec.ID,
		Detail: fmt.Sprintf("package=%s region=%s cached=%v rebake=%v", req.Package, req.Region, cached, req.Rebake)})
	code := http.StatusAccepted
	if cached {
		code = http.StatusOK
	}
	writeJSON(w, code, SubmitResponse{Bake: rec, Cached: cached})
}

// admit checks a request and the team's limits before it is queued.
func (a *API) admit(ctx context.Context, who store.Identity, req *bakery.Request) error {
	if err := a.Limits.allow(who.Team, req.Rebake); err != nil {
		return err
	}
	if err := a.policy().Check(req); err != nil {
		return badRequest{err}
	}
	if a.Limits.RequireLiveWorkers {
		n, err := a.Store.LiveWorkers(ctx, req.Region)
		if err != nil {
			return err
		}
		if n == 0 {
			return errNoWorkers{fmt.Errorf("no live worker takes bakes for region %s; the request was not queued", req.Region)}
		}
	}
	return a.Limits.checkQueued(ctx, a.Store, who.Team)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	who := identity(r)
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = a.Limits.DefaultPageSize
	}
	limit = min(limit, a.Limits.MaxPageSize)
	f, err := filterOf(q)
	if err != nil {
		a.fail(w, badRequest{err})
		return
	}
	all, err := a.Store.All(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	var mine []*bakery.Record
	for _, rec := range all {
		if who.Sees(rec) && f.matches(rec) {
			mine = append(mine, rec)
		}
	}
	page, err := paginate(mine, q.Get("after"), max(1, limit))
	if err != nil {
		a.fail(w, badRequest{err})
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// record reads a bake the identity may see; another team's is not found.
func (a *API) record(r *http.Request) (*bakery.Record, error) {
	id := r.PathValue("id")
	rec, _, err := a.Store.Get(r.Context(), id)
	if errors.Is(err, jetstream.ErrInvalidKey) {
		err = fmt.Errorf("no bake %s: %w", id, bakery.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !identity(r).Sees(rec) {
		return nil, fmt.Errorf("no bake %s: %w", id, bakery.ErrNotFound)
	}
	return rec, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	rec, err := a.record(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// logs serves a bake's log: what has been stored so far while it runs
// (every worker.Worker.LogFlush), all of it once it has ended; ?offset=N skips the
// first N bytes, so a page tailing it fetches only what is new.
// X-Log-Size is the log's size, X-Bake-State the bake's state.
func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	rec, err := a.record(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	offset := 0
	if o := r.URL.Query().Get("offset"); o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 {
			a.fail(w, badRequest{fmt.Errorf("offset %q: a number of bytes", o)})
			return
		}
	}
	b, err := a.Store.Log(r.Context(), rec.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Log-Size", strconv.Itoa(len(b)))
	w.Header().Set("X-Bake-State", rec.State)
	w.Write(b[min(offset, len(b)):])
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	who := identity(r)
	rec, err := a.record(r)
	if err == nil {
		rec, err = a.Store.Cancel(r.Context(), rec.ID)
		if err != nil && !errors.Is(err, bakery.ErrNotFound) {
			err = badRequest{err}
		}
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	a.Store.Audit(r.Context(), store.AuditEntry{Actor: who.Actor(), Team: rec.Team, Action: "cancel", Target: rec.ID})
	writeJSON(w, http.StatusOK, rec)
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, identity(r))
}

func (a *API) auditLog(w http.ResponseWriter, r *http.Request) {
	if !identity(r).Admin {
		a.fail(w, errForbidden{errors.New("the audit log is for admin tokens")})
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	entries, err := a.Store.AuditLog(r.Context(), limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, entries)
}

// regionsResponse is GET /api/v1/regions.
type regionsResponse struct {
	Regions []store.RegionStatus `json:"regions"`
}

func (a *API) regions(w http.ResponseWriter, r *http.Request) {
	rs, err := a.Store.Regions(r.Context(), identity(r).Admin)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, regionsResponse{Regions: rs})
}
