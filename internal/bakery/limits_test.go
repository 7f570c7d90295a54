package bakery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Bodies, tags, timeouts, rates, rebakes, queue quotas and regions
// without workers are refused with a clear reason, and nothing is queued.
func TestAPILimits(t *testing.T) {
	limits := DefaultLimits()
	limits.Rate, limits.Burst, limits.Rebakes, limits.RebakeBurst, limits.MaxQueued = 0.001, 6, 0.001, 1, 4
	h := newAPI(t, limits)
	big := app("app")
	big.Name = strings.Repeat("x", MaxBodyBytes)
	if code, body := h.call(h.teamB, "POST", "/api/v1/bakes", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d %s", MaxBodyBytes, code, body)
	}
	tags := app("app")
	tags.Tags = map[string]string{}
	for i := range MaxTags + 1 {
		tags.Tags[fmt.Sprint("t", i)] = "v"
	}
	long := app("app")
	long.Tags = map[string]string{"team": strings.Repeat("v", 300)}
	slow := app("app")
	slow.TimeoutSeconds = int(MaxTimeout.Seconds()) + 1
	nowhere := app("app")
	nowhere.Region = "mars"
	for name, c := range map[string]struct {
		req  Request
		code int
		why  string
	}{
		"too many tags":      {tags, http.StatusBadRequest, "at most 50"},
		"a long tag":         {long, http.StatusBadRequest, "at most 256 bytes"},
		"a long timeout":     {slow, http.StatusBadRequest, "maximum"},
		"a region no worker": {nowhere, http.StatusServiceUnavailable, "no live worker takes bakes for region mars"},
	} {
		if code, body := h.call(h.teamB, "POST", "/api/v1/bakes", c.req); code != c.code || !strings.Contains(body, c.why) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if n := h.count(); n != 0 {
		t.Fatalf("%d bakes recorded", n)
	}
	// Team a: the queue quota (4), then a rebake too many, then the rate.
	for i := range 4 {
		if code, _ := h.submit(h.teamA, app(fmt.Sprint("app", i))); code != http.StatusAccepted {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", app("app9")); code != http.StatusTooManyRequests || !strings.Contains(body, "quota") {
		t.Errorf("over the queue quota: %d %s", code, body)
	}
	h.call(h.admin, "POST", "/api/v1/bakes/bake1/cancel", nil)
	re := app("app1")
	re.Rebake = true
	if code, _ := h.submit(h.teamA, re); code != http.StatusAccepted {
		t.Errorf("a first rebake: %d", code)
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", re); code != http.StatusTooManyRequests || !strings.Contains(body, "rebakes") {
		t.Errorf("a second rebake: %d %s", code, body)
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", app("app1")); code != http.StatusTooManyRequests || !strings.Contains(body, "too many requests") {
		t.Errorf("over the rate: %d %s", code, body)
	}
	// Another team has buckets of its own.
	if code, _ := h.submit(h.teamB, app("app")); code != http.StatusAccepted {
		t.Errorf("team b: %d", code)
	}
}

// The list comes in pages, newest first, each page's cursor leading to
// the next.
func TestAPIListPages(t *testing.T) {
	h := newAPI(t, nil)
	for i := range 5 {
		h.submit(h.teamA, app(fmt.Sprint("app", i)))
		time.Sleep(time.Millisecond)
	}
	var got []string
	path := "/api/v1/bakes?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		code, body := h.call(h.teamA, "GET", path, nil)
		var p Page
		if err := json.Unmarshal([]byte(body), &p); err != nil || code != http.StatusOK || len(p.Bakes) > 2 {
			t.Fatalf("%d %s", code, body)
		}
		for _, r := range p.Bakes {
			got = append(got, r.ID)
		}
		path = ""
		if p.Next != "" {
			path = "/api/v1/bakes?limit=2&after=" + p.Next
		}
	}
	if want := "[bake5 bake4 bake3 bake2 bake1]"; fmt.Sprint(got) != want {
		t.Errorf("pages %v, want %s", got, want)
	}
	if code, _ := h.call(h.teamA, "GET", "/api/v1/bakes?after=garbage", nil); code != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d", code)
	}
}

// Who submitted, cancelled, created or revoked what: in the audit
// stream, for admins only.
func TestAuditLog(t *testing.T) {
	h := newAPI(t, nil)
	ctx := context.Background()
	_, b := h.submit(h.teamA, app("app"))
	h.call(h.teamA, "POST", "/api/v1/bakes/"+b.Bake.ID+"/cancel", nil)
	_, tok, _ := h.s.CreateToken(ctx, "team-c", false, "cli:root@host")
	h.s.RevokeToken(ctx, tok.ID, "cli:root@host")
	if code, _ := h.call(h.teamA, "GET", "/api/v1/audit", nil); code != http.StatusForbidden {
		t.Errorf("a team reads the audit log: %d", code)
	}
	code, body := h.call(h.admin, "GET", "/api/v1/audit", nil)
	var entries []AuditEntry
	if err := json.Unmarshal([]byte(body), &entries); err != nil || code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	var lines []string
	for _, e := range entries {
		if e.Time.IsZero() || e.Actor == "" {
			t.Errorf("entry %+v", e)
		}
		lines = append(lines, e.Action+" "+e.Team+" "+e.Target)
	}
	idA, _, _ := strings.Cut(strings.TrimPrefix(h.teamA, tokenPrefix), "_")
	want := []string{"token.create team-a " + idA, "token.create team-b", "token.create ops", "submit team-a " + b.Bake.ID,
		"cancel team-a " + b.Bake.ID, "token.create team-c " + tok.ID, "token.revoke team-c " + tok.ID}
	if len(lines) != len(want) {
		t.Fatalf("audit log:\n%s", strings.Join(lines, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("entry %d: %q, want %q", i, lines[i], want[i])
		}
	}
	if entries[3].Actor != "token:"+idA || entries[5].Actor != "cli:root@host" {
		t.Errorf("actors %q %q", entries[3].Actor, entries[5].Actor)
	}
	if last, _ := h.s.AuditLog(ctx, 2); len(last) != 2 || last[1].Action != "token.revoke" {
		t.Errorf("the last two: %+v", last)
	}
}

// Every stream the bakery makes (its buckets and object store are
// streams too) has a size cap, and all but the tokens' a maximum age.
func TestEveryStreamIsBounded(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var names []string
	for info := range s.JS.ListStreams(ctx).Info() {
		c := info.Config
		names = append(names, c.Name)
		if c.MaxBytes <= 0 {
			t.Errorf("%s has no size cap", c.Name)
		}
		if c.MaxAge <= 0 && c.Name != "KV_"+tokenBucket {
			t.Errorf("%s keeps messages forever", c.Name)
		}
	}
	if len(names) != 7 {
		t.Errorf("streams %v", names)
	}
}

// The administration commands attach to the store as serve made it:
// they neither create it nor change its limits.
func TestAttachKeepsTheLimits(t *testing.T) {
	ns, client, err := EmbeddedNATS{Dir: t.TempDir(), Listen: "127.0.0.1:-1"}.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := client.Connect("t")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	if _, err := Attach(ctx, nc); err == nil || !strings.Contains(err.Error(), "aminate serve makes it") {
		t.Errorf("attach to an empty NATS: %v", err)
	}
	ret := DefaultRetention()
	ret.Records = 90 * 24 * time.Hour
	if _, err := OpenWith(ctx, nc, ret); err != nil {
		t.Fatal(err)
	}
	s, err := Attach(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, "team-a", false, "test"); err != nil {
		t.Fatal(err)
	}
	st, _ := s.JS.Stream(ctx, "KV_"+recordBucket)
	if info, _ := st.Info(ctx); info.Config.MaxAge != ret.Records {
		t.Errorf("records kept %s, want %s", info.Config.MaxAge, ret.Records)
	}
}
