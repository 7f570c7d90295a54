package api

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aminator-go/aminator/internal/bakery"
)

// route is one endpoint the API serves: the OpenAPI document
// (openapi.json) describes each, and a test holds the two together.
type route struct {
	Method, Path string
	// Public routes need no token (the dashboard's files, the document).
	Public  bool
	handler func(*API) http.HandlerFunc
}

// routes are the API's endpoints, in the order the document lists them.
var routes = []route{
	{Method: "POST", Path: "/api/v1/bakes", handler: func(a *API) http.HandlerFunc { return a.submit }},
	{Method: "GET", Path: "/api/v1/bakes", handler: func(a *API) http.HandlerFunc { return a.list }},
	{Method: "GET", Path: "/api/v1/bakes/{id}", handler: func(a *API) http.HandlerFunc { return a.get }},
	{Method: "GET", Path: "/api/v1/bakes/{id}/logs", handler: func(a *API) http.HandlerFunc { return a.logs }},
	{Method: "POST", Path: "/api/v1/bakes/{id}/cancel", handler: func(a *API) http.HandlerFunc { return a.cancel }},
	{Method: "GET", Path: "/api/v1/regions", handler: func(a *API) http.HandlerFunc { return a.regions }},
	{Method: "GET", Path: "/api/v1/images", handler: func(a *API) http.HandlerFunc { return a.images }},
	{Method: "GET", Path: "/api/v1/whoami", handler: func(a *API) http.HandlerFunc { return a.whoami }},
	{Method: "GET", Path: "/api/v1/audit", handler: func(a *API) http.HandlerFunc { return a.auditLog }},
	{Method: "GET", Path: "/api/v1/openapi.json", Public: true, handler: func(a *API) http.HandlerFunc { return a.openAPI }},
	{Method: "GET", Path: "/", Public: true, handler: func(a *API) http.HandlerFunc { return a.dashboard }},
	{Method: "GET", Path: "/dashboard/{file}", Public: true, handler: func(a *API) http.HandlerFunc { return a.dashboardFile }},
}

// pattern is the route's net/http pattern ("/" matches only itself).
func (r route) pattern() string {
	if r.Path == "/" {
		return r.Method + " /{$}"
	}
	return r.Method + " " + r.Path
}

// Handler serves the API and the dashboard.
func (a *API) Handler() http.Handler {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	if a.Limits == nil {
		a.Limits = DefaultLimits()
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		h := r.handler(a)
		if !r.Public {
			h = a.authed(h)
		}
		mux.HandleFunc(r.pattern(), h)
	}
	return a.guard(mux)
}

// errNoFile answers a request for a file the dashboard does not have.
var errNoFile = fmt.Errorf("no such file: %w", bakery.ErrNotFound)
