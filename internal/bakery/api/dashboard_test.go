package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
	"github.com/aminator-go/aminator/internal/bakery/worker"
	"github.com/aminator-go/aminator/internal/plugin"
)

func (h *apiHarness) getJSON(token, path string, v any) int {
	h.t.Helper()
	code, body := h.call(token, "GET", path, nil)
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			h.t.Fatalf("%s: %v", path, err)
		}
	}
	return code
}

// fakeImages is a region's images: a foundation, a base baked on it with
// two channel labels, and an app image of each bake id given.
func fakeImages(apps map[string]string) func(context.Context, string) ([]*plugin.Image, error) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	im := func(id, name string, at int, tags plugin.Tags) *plugin.Image {
		return &plugin.Image{ID: id, Name: name, CreatedAt: t0.Add(time.Duration(at) * time.Hour), Tags: tags}
	}
	return func(_ context.Context, region string) ([]*plugin.Image, error) {
		if region != "local" {
			return nil, fmt.Errorf("no region %s", region)
		}
		out := []*plugin.Image{
			im("ami-f", "debian-1", 0, plugin.Tags{"role": "foundation", "family": "debian"}),
			im("ami-b1", "mybase-1", 1, plugin.Tags{"role": "base", "family": "mybase", "channel": "previous", "lineage": "ami-f"}),
			im("ami-b2", "mybase-2", 2, plugin.Tags{"role": "base", "family": "mybase", "channel": "release", "lineage": "ami-f"}),
			im("ami-cli", "cli-app", 3, plugin.Tags{"role": "app", "family": "cli-app", "lineage": "ami-f,ami-b2"}),
		}
		n := 4
		for bake, fam := range apps {
			n++
			out = append(out, im("ami-"+bake, fam+"-1", n, plugin.Tags{"role": "app", "family": fam, "bakery_id": bake, "lineage": "ami-f,ami-gone,ami-b2"}))
		}
		return out, nil
	}
}

// The list filters by state, region, package and (for admins) team, and
// pages through what is left; a filter never shows another team's bake.
func TestListFilters(t *testing.T) {
	h := newAPI(t, nil)
	ctx := context.Background()
	h.s.Alive(ctx, "west", "w")
	var ids []string
	for i, r := range []bakery.Request{bakerytest.App("web-1"), bakerytest.App("web-2"), {Package: "db-1", BaseID: "ami-00000000000000001", Region: "west"}} {
		_, res := h.submit(h.teamA, r)
		ids = append(ids, res.Bake.ID)
		if i == 1 {
			h.s.Cancel(ctx, res.Bake.ID)
		}
	}
	h.submit(h.teamB, bakerytest.App("web-b"))
	for q, want := range map[string]string{
		"package=web":                 ids[1] + "," + ids[0],
		"state=canceled":              ids[1],
		"region=west":                 ids[2],
		"state=queued&package=web":    ids[0],
		"team=team-b":                 "",
		"package=web&limit=1":         ids[1],
		"package=nothing-of-the-sort": "",
	} {
		var p bakesPage
		if code := h.getJSON(h.teamA, "/api/v1/bakes?"+q, &p); code != http.StatusOK {
			t.Fatalf("%s: %d", q, code)
		}
		var got []string
		for _, b := range p.Bakes {
			got = append(got, b.ID)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("team-a's ?%s: %v, want %s", q, got, want)
		}
	}
	var p bakesPage
	h.getJSON(h.admin, "/api/v1/bakes?team=team-b", &p)
	if len(p.Bakes) != 1 || p.Bakes[0].Team != "team-b" {
		t.Errorf("an admin's ?team=team-b: %+v", p.Bakes)
	}
	h.getJSON(h.teamA, "/api/v1/bakes?package=web&limit=1", &p)
	next := p.Next
	p = bakesPage{}
	h.getJSON(h.teamA, "/api/v1/bakes?package=web&limit=1&after="+next, &p)
	if len(p.Bakes) != 1 || p.Bakes[0].ID != ids[0] || p.Next != "" {
		t.Errorf("the second page: %+v next %q", p.Bakes, p.Next)
	}
}

// Regions show live workers (names to admins only) and the queue's
// depth from the stream.
func TestRegions(t *testing.T) {
	h := newAPI(t, nil)
	ctx := context.Background()
	h.submit(h.teamA, bakerytest.App("one"))
	h.submit(h.teamB, bakerytest.App("two"))
	var rs regionsResponse
	h.getJSON(h.teamA, "/api/v1/regions", &rs)
	if len(rs.Regions) != 1 || fmt.Sprint(rs.Regions[0]) != fmt.Sprint(store.RegionStatus{Region: "local", Workers: 1, Queued: 2}) {
		t.Errorf("team-a's regions: %+v", rs.Regions)
	}
	h.s.Alive(ctx, "west", "host/1/west")
	h.getJSON(h.admin, "/api/v1/regions", &rs)
	if len(rs.Regions) != 2 || rs.Regions[1].Region != "west" || strings.Join(rs.Regions[1].WorkerNames, ",") != "host/1/west" {
		t.Errorf("an admin's regions: %+v", rs.Regions)
	}
}

// Images: a region's families with their channels and lineage; bases
// and foundations are everyone's, app images only their bake's team's.
func TestImagesScope(t *testing.T) {
	h := newAPI(t, nil)
	_, a := h.submit(h.teamA, bakerytest.App("a"))
	_, b := h.submit(h.teamB, bakerytest.App("b"))
	h.api.Images = fakeImages(map[string]string{a.Bake.ID: "app-a", b.Bake.ID: "app-b"})
	families := func(token string) map[string]familyView {
		var res imagesResponse
		if code := h.getJSON(token, "/api/v1/images?region=local", &res); code != http.StatusOK {
			t.Fatalf("images: %d", code)
		}
		out := map[string]familyView{}
		var order []string
		for _, f := range res.Families {
			out[f.Family] = f
			order = append(order, f.Role)
		}
		if strings.Join(order, ",")[:len("foundation,base")] != "foundation,base" {
			t.Errorf("families in the order %v, want foundations, bases, apps", order)
		}
		return out
	}
	fa := families(h.teamA)
	if _, ok := fa["app-b"]; ok || len(fa) != 3 {
		t.Errorf("team-a sees %v", fa)
	}
	base := fa["mybase"]
	if base.Channels["release"] != "ami-b2" || base.Channels["previous"] != "ami-b1" || len(base.Images) != 2 || base.Images[0].ID != "ami-b2" {
		t.Errorf("mybase %+v", base)
	}
	lin := fa["app-a"].Images[0].Lineage
	if len(lin) != 3 || lin[0].Role != "foundation" || lin[0].Family != "debian" || !lin[1].Gone || lin[2].Name != "mybase-2" {
		t.Errorf("app-a's lineage %+v", lin)
	}
	if all := families(h.admin); len(all) != 5 {
		t.Errorf("an admin sees %d families", len(all))
	}
	if code, _ := h.call(h.teamA, "GET", "/api/v1/images?region=../x", nil); code != http.StatusBadRequest {
		t.Errorf("a bad region: %d", code)
	}
}

// stageRunner writes a bake's stages as the child does, slowly, and
// waits for the test to let it end.
type stageRunner struct{ release chan struct{} }

func (r *stageRunner) Run(ctx context.Context, rec *bakery.Record, log io.Writer) ([]bakery.Image, error) {
	fmt.Fprintf(log, "time=2026-01-01T00:00:00Z level=INFO msg=\"bake started\" id=%s\n", rec.ID)
	fmt.Fprint(log, "time=2026-01-01T00:00:00Z level=INFO msg=\"stage resolve base\" stage=\"resolve base\"\n")
	fmt.Fprint(log, "time=2026-01-01T00:00:00Z level=INFO msg=\"stage mount\" sta")
	fmt.Fprint(log, "ge=mount\ntime=2026-01-01T00:00:00Z level=DEBUG msg=\"stage done\" stage=mount took=1ms\n")
	fmt.Fprint(log, "level=INFO msg=\"package says: stage mount\" stage=mount\n") // not a stage line
	select {
	case <-r.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fmt.Fprint(log, `{"time":"2026-01-01T00:00:01Z","level":"INFO","msg":"stage provision","stage":"provision"}`+"\n")
	return []bakery.Image{{ID: "ami-00000000000000002", Name: "app-1"}}, nil
}

// A running bake's stages and log reach the API while it runs; the log
// can be read from an offset; both are whole once it has ended.
func TestLiveLogAndStages(t *testing.T) {
	h := newAPI(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r := &stageRunner{release: make(chan struct{})}
	w := &worker.Worker{Store: h.s, Region: "local", Name: "w1", Runner: r, PackageDir: h.api.PackageDir, LogFlush: 50 * time.Millisecond}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	_, res := h.submit(h.teamA, bakerytest.App("live"))
	id := res.Bake.ID
	var rec bakery.Record
	for deadline := time.Now().Add(20 * time.Second); len(rec.Stages) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no stages while running: %+v", rec)
		}
		h.getJSON(h.teamA, "/api/v1/bakes/"+id, &rec)
	}
	if rec.State != bakery.Running || rec.Stages[0].Name != "resolve base" || rec.Stages[1].Name != "mount" || len(rec.Stages) != 2 {
		t.Errorf("running bake %s %+v", rec.State, rec.Stages)
	}
	code, body, hdr := h.callFull(h.teamA, "GET", "/api/v1/bakes/"+id+"/logs", nil)
	if code != http.StatusOK || !strings.Contains(body, "bake started") || hdr.Get("X-Bake-State") != bakery.Running {
		t.Errorf("a running bake's log: %d %s %.200s", code, hdr.Get("X-Bake-State"), body)
	}
	if code, _ := h.call(h.teamB, "GET", "/api/v1/bakes/"+id+"/logs", nil); code != http.StatusNotFound {
		t.Errorf("another team reads a running bake's log: %d", code)
	}
	close(r.release)
	end := bakerytest.Wait(t, h.s, id)
	if end.State != bakery.Completed || len(end.Stages) != 3 || end.Stages[2].Name != "provision" {
		t.Errorf("ended bake %s %+v", end.State, end.Stages)
	}
	_, all, hdr := h.callFull(h.teamA, "GET", "/api/v1/bakes/"+id+"/logs", nil)
	_, tail, _ := h.callFull(h.teamA, "GET", "/api/v1/bakes/"+id+"/logs?offset="+fmt.Sprint(len(body)), nil)
	if hdr.Get("X-Log-Size") != fmt.Sprint(len(all)) || all != body+tail || !strings.Contains(tail, "stage provision") {
		t.Errorf("log %q then %q (size %s)", body, tail, hdr.Get("X-Log-Size"))
	}
}

// The dashboard's page and files carry a CSP that allows only its own
// script and style sheet, and nothing in them needs more: no inline
// script, event handler or style attribute, no cookie or localStorage
// (the token lives in the tab's sessionStorage), no other origin.
func TestDashboardKeepsToItsCSP(t *testing.T) {
	h := newAPI(t, nil)
	for _, path := range []string{"/", "/dashboard/app.js", "/dashboard/app.css"} {
		code, body, hdr := h.callFull("", "GET", path, nil)
		csp := hdr.Get("Content-Security-Policy")
		if code != http.StatusOK || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") ||
			strings.Contains(csp, "unsafe") || hdr.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d, CSP %q", path, code, csp)
		}
		for _, bad := range []string{"<script>", " onclick=", " onload=", " style=", "document.cookie", "localStorage", "http://", "https://", "eval("} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
	}
	if code, _ := h.call("", "GET", "/dashboard/index.html", nil); code != http.StatusNotFound {
		t.Errorf("a file the dashboard does not serve: %d", code)
	}
	if code, _ := h.call("", "GET", "/dashboard/../openapi.json", nil); code == http.StatusOK {
		t.Error("a path out of the dashboard's files was served")
	}
}
