package api

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/aminator-go/aminator/internal/bakery/store"
)

// guard refuses what no handler should see: a foreign Host header (403),
// a body that is not application/json (415); it caps bodies at
// Limits.MaxBody and sets headers that keep browsers from sniffing,
// framing or caching answers.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		if !a.hostAllowed(r.Host) {
			a.fail(w, errForbidden{fmt.Errorf("host %q is not this bakery's (serve --api-host names it)", r.Host)})
			return
		}
		if hasBody(r) {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "request bodies must be application/json"})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, a.Limits.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// hasBody says whether a request carries a body or says it does.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || r.Header.Get("Content-Type") != "" || len(r.TransferEncoding) > 0
}

// hostAllowed checks the Host header's name (its port aside) against Hosts.
func (a *API) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, ok := range a.Hosts {
		if host != "" && host == strings.ToLower(strings.Trim(ok, "[]")) {
			return true
		}
	}
	return false
}

type identityKey struct{}

// authed runs a handler for a request with a valid bearer token (401
// otherwise), with the token's identity in its context.
func (a *API) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || bearer == "" {
			a.fail(w, fmt.Errorf("give a token in the Authorization header (Bearer): %w", store.ErrUnauthorized))
			return
		}
		who, err := a.Store.Authenticate(r.Context(), strings.TrimSpace(bearer))
		if err != nil {
			if !errors.Is(err, store.ErrUnauthorized) {
				a.Log.Error("authenticate", "err", err)
			}
			a.fail(w, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, who)))
	}
}

// identity is who made an authenticated request.
func identity(r *http.Request) store.Identity {
	who, _ := r.Context().Value(identityKey{}).(store.Identity)
	return who
}
