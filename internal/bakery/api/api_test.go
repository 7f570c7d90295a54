package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// apiHarness is an API on a real embedded NATS, with tokens of two teams
// and an admin, and a live worker for region "local".
type apiHarness struct {
	t                   *testing.T
	s                   *store.Store
	api                 *API
	srv                 *httptest.Server
	teamA, teamB, admin string
	n                   int
}

func newAPI(t *testing.T, limits *Limits) *apiHarness {
	t.Helper()
	h := &apiHarness{t: t, s: bakerytest.Store(t)}
	ctx := context.Background()
	if err := h.s.Alive(ctx, "local", "test-worker"); err != nil {
		t.Fatal(err)
	}
	if limits == nil {
		limits = DefaultLimits()
	}
	h.api = &API{Store: h.s, Hosts: []string{"127.0.0.1"}, Limits: limits, PackageDir: t.TempDir(),
		Resolve: func(_ context.Context, r bakery.Request) (string, error) { return "ami-00000000000000001", nil },
		NewID:   func() string { h.n++; return fmt.Sprintf("bake%d", h.n) }}
	h.srv = httptest.NewServer(h.api.Handler())
	t.Cleanup(h.srv.Close)
	h.teamA, h.teamB, h.admin = h.token("team-a", false), h.token("team-b", false), h.token("ops", true)
	return h
}

func (h *apiHarness) token(team string, admin bool) string {
	h.t.Helper()
	secret, _, err := h.s.CreateToken(context.Background(), team, admin, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return secret
}

// call makes a request with a token ("": none) and a JSON body (a string
// is sent as it is, as text/plain); header is name, value pairs ("Host"
// sets the request's host).
func (h *apiHarness) call(token, method, path string, body any, header ...string) (int, string) {
	h.t.Helper()
	code, b, _ := h.callFull(token, method, path, body, header...)
	return code, b
}

// callFull is call with the answer's headers.
func (h *apiHarness) callFull(token, method, path string, body any, header ...string) (int, string, http.Header) {
	h.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "text/plain"
	default:
		j, _ := json.Marshal(b)
		rd, ctype = strings.NewReader(string(j)), "application/json"
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (h *apiHarness) submit(token string, req bakery.Request) (int, SubmitResponse) {
	h.t.Helper()
	code, body := h.call(token, "POST", "/api/v1/bakes", req)
	var r SubmitResponse
	json.Unmarshal([]byte(body), &r)
	return code, r
}

func (h *apiHarness) count() int {
	h.t.Helper()
	all, err := h.s.All(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return len(all)
}

// A page on another site posting an HTML form (text/plain, no token) to
// the API: refused before anything is read, and nothing is queued; so is
// a request that reaches the API by another name (DNS rebinding).
func TestAPIRefusesCrossSiteRequests(t *testing.T) {
	h := newAPI(t, nil)
	form := `{"package":"app","base_id":"ami-00000000000000001","region":"local","x":"=y"}`
	for _, token := range []string{"", h.teamA} {
		if code, body := h.call(token, "POST", "/api/v1/bakes", form, "Origin", "http://evil.example"); code != http.StatusUnsupportedMediaType {
			t.Errorf("a text/plain form post (token %v): %d %s", token != "", code, body)
		}
	}
	for _, ctype := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json-seq"} {
		code, _ := h.call(h.teamA, "POST", "/api/v1/bakes", form, "Content-Type", ctype)
		if code != http.StatusUnsupportedMediaType {
			t.Errorf("%s: %d", ctype, code)
		}
	}
	for _, host := range []string{"evil.example", "evil.example:8420", "127.0.0.1.nip.io", "localhost"} {
		if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", bakerytest.App("app"), "Host", host); code != http.StatusForbidden {
			t.Errorf("Host %s: %d %s", host, code, body)
		}
		if code, _ := h.call(h.teamA, "GET", "/", nil, "Host", host); code != http.StatusForbidden {
			t.Errorf("dashboard with Host %s: %d", host, code)
		}
	}
	if n := h.count(); n != 0 {
		t.Errorf("%d bakes recorded", n)
	}
	if code, _ := h.submit(h.teamA, bakerytest.App("app")); code != http.StatusAccepted {
		t.Errorf("the same request, as JSON from the right host: %d", code)
	}
}

// Every API call needs a valid token; the dashboard's page needs none
// but holds no data.
func TestAPINeedsAToken(t *testing.T) {
	h := newAPI(t, nil)
	_, own := h.submit(h.teamA, bakerytest.App("app"))
	revoked := h.token("team-a", false)
	id := strings.Split(strings.TrimPrefix(revoked, store.TokenPrefix), "_")[0]
	if err := h.s.RevokeToken(context.Background(), id, "test"); err != nil {
		t.Fatal(err)
	}
	forged := h.teamA[:len(h.teamA)-4] + "AAAA"
	for _, token := range []string{"", "nonsense", forged, revoked, h.teamA + "x", "amt__"} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/bakes"}, {"GET", "/api/v1/bakes/" + own.Bake.ID}, {"GET", "/api/v1/bakes/" + own.Bake.ID + "/logs"},
			{"POST", "/api/v1/bakes/" + own.Bake.ID + "/cancel"}, {"GET", "/api/v1/whoami"}, {"GET", "/api/v1/audit"},
		} {
			if code, body := h.call(token, c.method, c.path, nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %.12q: %d %s", c.method, c.path, token, code, body)
			}
		}
		if code, _ := h.submit(token, bakerytest.App("other")); code != http.StatusUnauthorized {
			t.Errorf("submit with token %.12q: %d", token, code)
		}
	}
	if code, body := h.call("", "GET", "/", nil); code != http.StatusOK || strings.Contains(body, own.Bake.ID) || !strings.Contains(body, "API token") {
		t.Errorf("dashboard: %d %.200s", code, body)
	}
	if r, _, _ := h.s.Get(context.Background(), own.Bake.ID); r.Cancel {
		t.Error("a bad token cancelled the bake")
	}
}

// A team sees, cancels and reads the logs of its own bakes only; an
// identical request of another team is a bake of its own; admins see all.
func TestAPITeamScopes(t *testing.T) {
	h := newAPI(t, nil)
	ctx := context.Background()
	_, a := h.submit(h.teamA, bakerytest.App("app"))
	if err := h.s.PutLog(ctx, a.Bake.ID, strings.NewReader("secret log")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/bakes/" + a.Bake.ID}, {"GET", "/api/v1/bakes/" + a.Bake.ID + "/logs"}, {"POST", "/api/v1/bakes/" + a.Bake.ID + "/cancel"},
	} {
		code, body := h.call(h.teamB, c.method, c.path, nil)
		if code != http.StatusNotFound || strings.Contains(body, "secret") {
			t.Errorf("team b: %s %s: %d %s", c.method, c.path, code, body)
		}
		if code, _ := h.call(h.teamB, c.method, strings.Replace(c.path, a.Bake.ID, "nosuchbake", 1), nil); code != http.StatusNotFound {
			t.Errorf("team b: %s a bake that does not exist: %d", c.method, code)
		}
	}
	if r, _, _ := h.s.Get(ctx, a.Bake.ID); r.Cancel {
		t.Error("team b cancelled team a's bake")
	}
	code, b := h.submit(h.teamB, bakerytest.App("app"))
	if code != http.StatusAccepted || b.Cached || b.Bake.ID == a.Bake.ID || b.Bake.Team != "team-b" {
		t.Errorf("team b's identical request: %d %+v", code, b)
	}
	list := func(token string) []string {
		var p bakesPage
		_, body := h.call(token, "GET", "/api/v1/bakes", nil)
		json.Unmarshal([]byte(body), &p)
		var ids []string
		for _, r := range p.Bakes {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got := fmt.Sprint(list(h.teamB)); got != fmt.Sprint([]string{b.Bake.ID}) {
		t.Errorf("team b lists %s", got)
	}
	if got := fmt.Sprint(list(h.admin)); got != fmt.Sprint([]string{b.Bake.ID, a.Bake.ID}) {
		t.Errorf("the admin lists %s", got)
	}
	if code, body := h.call(h.teamA, "GET", "/api/v1/bakes/"+a.Bake.ID+"/logs", nil); code != http.StatusOK || body != "secret log" {
		t.Errorf("team a's own log: %d %s", code, body)
	}
	if code, _ := h.call(h.admin, "POST", "/api/v1/bakes/"+a.Bake.ID+"/cancel", nil); code != http.StatusOK {
		t.Errorf("the admin cancels: %d", code)
	}
}
