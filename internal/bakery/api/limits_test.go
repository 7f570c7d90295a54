package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// Bodies, tags, timeouts, rates, rebakes, queue quotas and regions
// without workers are refused with a clear reason, and nothing is queued.
func TestAPILimits(t *testing.T) {
	limits := DefaultLimits()
	limits.Rate, limits.Burst, limits.Rebakes, limits.RebakeBurst, limits.MaxQueued = 0.001, 6, 0.001, 1, 4
	h := newAPI(t, limits)
	big := bakerytest.App("app")
	big.Name = strings.Repeat("x", maxBodyBytes)
	if code, body := h.call(h.teamB, "POST", "/api/v1/bakes", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d %s", maxBodyBytes, code, body)
	}
	tags := bakerytest.App("app")
	tags.Tags = map[string]string{}
	for i := range bakery.MaxTags + 1 {
		tags.Tags[fmt.Sprint("t", i)] = "v"
	}
	long := bakerytest.App("app")
	long.Tags = map[string]string{"team": strings.Repeat("v", 300)}
	slow := bakerytest.App("app")
	slow.TimeoutSeconds = int(bakery.MaxTimeout.Seconds()) + 1
	nowhere := bakerytest.App("app")
	nowhere.Region = "mars"
	for name, c := range map[string]struct {
		req  bakery.Request
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
		if code, _ := h.submit(h.teamA, bakerytest.App(fmt.Sprint("app", i))); code != http.StatusAccepted {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", bakerytest.App("app9")); code != http.StatusTooManyRequests || !strings.Contains(body, "quota") {
		t.Errorf("over the queue quota: %d %s", code, body)
	}
	h.call(h.admin, "POST", "/api/v1/bakes/bake1/cancel", nil)
	re := bakerytest.App("app1")
	re.Rebake = true
	if code, _ := h.submit(h.teamA, re); code != http.StatusAccepted {
		t.Errorf("a first rebake: %d", code)
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", re); code != http.StatusTooManyRequests || !strings.Contains(body, "rebakes") {
		t.Errorf("a second rebake: %d %s", code, body)
	}
	if code, body := h.call(h.teamA, "POST", "/api/v1/bakes", bakerytest.App("app1")); code != http.StatusTooManyRequests || !strings.Contains(body, "too many requests") {
		t.Errorf("over the rate: %d %s", code, body)
	}
	// Another team has buckets of its own.
	if code, _ := h.submit(h.teamB, bakerytest.App("app")); code != http.StatusAccepted {
		t.Errorf("team b: %d", code)
	}
}

// The list comes in pages, newest first, each page's cursor leading to
// the next.
func TestAPIListPages(t *testing.T) {
	h := newAPI(t, nil)
	for i := range 5 {
		h.submit(h.teamA, bakerytest.App(fmt.Sprint("app", i)))
		time.Sleep(time.Millisecond)
	}
	var got []string
	path := "/api/v1/bakes?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		code, body := h.call(h.teamA, "GET", path, nil)
		var p bakesPage
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
	_, b := h.submit(h.teamA, bakerytest.App("app"))
	h.call(h.teamA, "POST", "/api/v1/bakes/"+b.Bake.ID+"/cancel", nil)
	_, tok, _ := h.s.CreateToken(ctx, "team-c", false, "cli:root@host")
	h.s.RevokeToken(ctx, tok.ID, "cli:root@host")
	if code, _ := h.call(h.teamA, "GET", "/api/v1/audit", nil); code != http.StatusForbidden {
		t.Errorf("a team reads the audit log: %d", code)
	}
	code, body := h.call(h.admin, "GET", "/api/v1/audit", nil)
	var entries []store.AuditEntry
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
	idA, _, _ := strings.Cut(strings.TrimPrefix(h.teamA, store.TokenPrefix), "_")
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
