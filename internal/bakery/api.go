package bakery

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// API is the bakery's HTTP interface:
//
//	POST /api/v1/bakes               bake (202; 200 with "cached" when an identical bake exists)
//	GET  /api/v1/bakes               recent bakes, newest first (?limit=N)
//	GET  /api/v1/bakes/{id}          one bake
//	GET  /api/v1/bakes/{id}/logs     its log, once it has ended
//	POST /api/v1/bakes/{id}/cancel   cancel it
//	GET  /                           the dashboard
type API struct {
	Store *Store
	// Resolve finds the base image a request names (in its region) and
	// returns its id; an error is the requester's.
	Resolve func(ctx context.Context, r Request) (string, error)
	NewID   func() string
	Log     *slog.Logger
	// PackageDir is the one directory local package files may come from
	// ("": none; requests name repository packages or URLs).
	PackageDir string
}

// Handler serves the API and the dashboard.
func (a *API) Handler() http.Handler {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/bakes", a.submit)
	mux.HandleFunc("GET /api/v1/bakes", a.list)
	mux.HandleFunc("GET /api/v1/bakes/{id}", a.get)
	mux.HandleFunc("GET /api/v1/bakes/{id}/logs", a.logs)
	mux.HandleFunc("POST /api/v1/bakes/{id}/cancel", a.cancel)
	mux.HandleFunc("GET /{$}", a.dashboard)
	return mux
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

func (a *API) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrNotFound) {
		code = http.StatusNotFound
	}
	var be badRequest
	if errors.As(err, &be) {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, apiError{Error: err.Error()})
}

type badRequest struct{ error }

// SubmitResponse is the answer to a bake request.
type SubmitResponse struct {
	Bake   *Record `json:"bake"`
	Cached bool    `json:"cached"`
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		a.fail(w, badRequest{err})
		return
	}
	if err := req.Validate(a.PackageDir); err != nil {
		a.fail(w, badRequest{err})
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
	rec, cached, err := a.Store.Submit(r.Context(), req, base, a.NewID())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.Log.Info("bake requested", "bake", rec.ID, "cached", cached, "package", req.Package, "region", req.Region)
	code := http.StatusAccepted
	if cached {
		code = http.StatusOK
	}
	writeJSON(w, code, SubmitResponse{Bake: rec, Cached: cached})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	recs, err := a.Store.List(r.Context(), limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	if recs == nil {
		recs = []*Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	rec, _, err := a.Store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	b, err := a.Store.Log(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	rec, err := a.Store.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			err = badRequest{err}
		}
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

var dashboardTmpl = template.Must(template.New("d").Funcs(template.FuncMap{
	"took": func(r *Record) string {
		if r.Started.IsZero() {
			return ""
		}
		end := r.Finished
		if end.IsZero() {
			end = time.Now()
		}
		return end.Sub(r.Started).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>aminator bakery</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd}
th{background:#f4f4f4}.queued{color:#777}.running{color:#0a58ca}.completed{color:#198754}.failed{color:#dc3545}.canceled{color:#b8860b}
code{font-size:13px}
</style></head><body>
<h1>aminator bakery</h1>
<p>{{len .}} recent bakes · refreshes every 5 s · <a href="/api/v1/bakes">JSON</a></p>
<table><tr><th>bake</th><th>state</th><th>package</th><th>base</th><th>region</th><th>image</th><th>worker</th><th>took</th><th>requested</th></tr>
{{range .}}<tr><td><code>{{.ID}}</code></td><td class="{{.State}}">{{.State}}{{if .Error}} — {{.Error}}{{end}}</td>
<td>{{.Request.Package}}</td><td>{{if .BaseID}}{{.BaseID}}{{else}}{{.Request.BaseName}}{{end}}</td><td>{{.Request.Region}}</td>
<td>{{if .ImageID}}<code>{{.ImageID}}</code> {{.Image}}{{end}}</td><td>{{.Worker}}</td><td>{{took .}}</td>
<td>{{.Created.Format "2006-01-02 15:04:05"}} <a href="/api/v1/bakes/{{.ID}}/logs">log</a></td></tr>
{{end}}</table></body></html>`))

func (a *API) dashboard(w http.ResponseWriter, r *http.Request) {
	recs, err := a.Store.List(r.Context(), 200)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	dashboardTmpl.Execute(w, recs)
}
