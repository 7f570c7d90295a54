package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/broker"
	"github.com/aminator-go/aminator/internal/bakery/store"
	"github.com/aminator-go/aminator/internal/testutil"
)

// The bakery: aminate serve with an embedded NATS JetStream, an API,
// workers for two regions; a team's token from aminate bakery token
// create; identical requests are served from the cache and collapse when
// concurrent; a bake can be cancelled, a hung one times out, both leaving
// nothing; another team sees none of it; the list, logs and audit log
// show what happened.
func TestBakery(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	stop := serve(t, "--embedded-nats", "--listen", addr, "--worker-region", "local,west", "--workers", "2", "--package-dir", dir)
	defer stop()
	c := bakeryClient{T: t, URL: "http://" + addr}
	waitAPI(t, c)
	// NATS takes only the key serve generated (0600 in the state directory).
	if url, err := os.ReadFile(filepath.Join(shared().State, "nats", broker.EmbeddedURL)); err != nil {
		t.Error(err)
	} else if nc, err := nats.Connect(strings.TrimSpace(string(url))); err == nil {
		nc.Close()
		t.Error("a NATS client without credentials connected")
	}
	if st, err := os.Stat(filepath.Join(shared().State, "nats", broker.EmbeddedCreds)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the NATS key: %v %v", st, err)
	}
	c.Token = mustOK(t, aminate(t, "bakery", "token", "create", "--team", "app"))
	other := bakeryClient{T: t, URL: c.URL, Token: mustOK(t, aminate(t, "bakery", "token", "create", "--team", "other"))}
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery", Version: "1.0", Files: map[string]string{"/opt/bakery": "b\n"}})

	code, first := c.Submit(bakery.Request{Package: deb, BaseID: b, Region: "local", CI: map[string]string{"job": "app-build", "build": "42"}})
	if code != http.StatusAccepted || first.Cached {
		t.Errorf("first request: %d %+v", code, first)
	}
	done := c.Wait(first.Bake.ID, bakery.Completed, bakery.Failed)
	if done.State != bakery.Completed || done.ImageID == "" {
		t.Fatalf("bake %+v", done)
	}
	im := showImage(t, done.ImageID)
	if im.Tags["bakery_id"] != first.Bake.ID || im.Tags["ci_build"] != "42" {
		t.Errorf("image tags %v", im.Tags)
	}

	// The same again: served from the cache; with rebake: a new bake.
	code, again := c.Submit(bakery.Request{Package: deb, BaseID: b, Region: "local", CI: map[string]string{"build": "43"}})
	if code != http.StatusOK || !again.Cached || again.Bake.ID != first.Bake.ID {
		t.Errorf("identical request: %d cached %v id %s", code, again.Cached, again.Bake.ID)
	}
	_, re := c.Submit(bakery.Request{Package: deb, BaseID: b, Region: "local", Rebake: true, Name: "rebaked"})
	if re.Cached || re.Bake.ID == first.Bake.ID {
		t.Errorf("rebake: %+v", re)
	}
	c.Wait(re.Bake.ID, bakery.Completed, bakery.Failed)

	// Concurrent identical requests collapse into one bake, in the other region.
	deb2 := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery-two", Version: "1.0"})
	ids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, r := c.Submit(bakery.Request{Package: deb2, BaseID: b, Region: "west"})
			ids[i] = r.Bake.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent identical requests made several bakes: %v", ids)
		}
	}
	west := c.Wait(ids[0], bakery.Completed, bakery.Failed)
	if west.State != bakery.Completed || !strings.HasSuffix(west.Worker, "/west") {
		t.Errorf("west bake %+v", west)
	}

	// Cancel a running bake; another one hangs until its timeout.
	slow := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery-slow", Version: "1.0", Postinst: "sleep 304"})
	hung := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery-hung", Version: "1.0", Postinst: "sleep 305"})
	_, s := c.Submit(bakery.Request{Package: slow, BaseID: b, Region: "local"})
	_, h := c.Submit(bakery.Request{Package: hung, BaseID: b, Region: "local", TimeoutSeconds: 15})
	c.Wait(s.Bake.ID, bakery.Running)
	time.Sleep(2 * time.Second) // into the install
	if code, body := c.Do("POST", "/api/v1/bakes/"+s.Bake.ID+"/cancel", nil); code != http.StatusOK {
		t.Errorf("cancel: %d %s", code, body)
	}
	if r := c.Wait(s.Bake.ID, bakery.Canceled, bakery.Failed, bakery.Completed); r.State != bakery.Canceled {
		t.Errorf("cancelled bake ended %s: %s", r.State, r.Error)
	}
	if r := c.Wait(h.Bake.ID, bakery.Canceled, bakery.Failed, bakery.Completed); r.State != bakery.Failed || !strings.Contains(r.Error, "timed out after 15s") {
		t.Errorf("the hung bake ended %s: %s", r.State, r.Error)
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 30[45]").Output(); len(out) > 0 {
		t.Errorf("the cancelled or hung bake's postinst still runs")
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("the cancelled and hung bakes left volumes: %d rows, %d files", rows, files)
	}

	// A failing bake says why.
	bad := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery-bad", Version: "1.0", Postinst: "exit 7"})
	_, f := c.Submit(bakery.Request{Package: bad, BaseID: b, Region: "local"})
	if r := c.Wait(f.Bake.ID, bakery.Failed, bakery.Completed); r.State != bakery.Failed || !strings.Contains(r.Error, "dpkg") {
		t.Errorf("failing bake: %s %q", r.State, r.Error)
	}

	// Logs, dashboard, bad requests.
	if code, body := c.Do("GET", "/api/v1/bakes/"+first.Bake.ID+"/logs", nil); code != http.StatusOK || !strings.Contains(string(body), "bake started") {
		t.Errorf("logs: %d %.300s", code, body)
	}
	if code, body := c.Do("GET", "/api/v1/bakes?limit=100", nil); code != http.StatusOK || !strings.Contains(string(body), first.Bake.ID) || !strings.Contains(string(body), "canceled") {
		t.Errorf("list: %d %.300s", code, body)
	}
	if code, body := c.Do("GET", "/", nil); code != http.StatusOK || !strings.Contains(string(body), "API token") {
		t.Errorf("dashboard: %d %.300s", code, body)
	}
	// Another team, or no token: nothing of it.
	if code, _ := other.Do("GET", "/api/v1/bakes/"+first.Bake.ID+"/logs", nil); code != http.StatusNotFound {
		t.Errorf("another team reads the log: %d", code)
	}
	if code, body := other.Do("GET", "/api/v1/bakes", nil); code != http.StatusOK || strings.Contains(string(body), first.Bake.ID) {
		t.Errorf("another team lists: %d %.300s", code, body)
	}
	if code, _ := (bakeryClient{T: t, URL: c.URL}).Do("GET", "/api/v1/bakes/"+first.Bake.ID, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	// A revoked token is refused from then on.
	tokens := mustOK(t, aminate(t, "bakery", "token", "list", "--output", "json"))
	var list []store.Token
	json.Unmarshal([]byte(tokens), &list)
	if len(list) != 2 || list[1].Team != "other" || strings.Contains(tokens, other.Token) {
		t.Fatalf("tokens: %s", tokens)
	}
	mustOK(t, aminate(t, "bakery", "token", "revoke", list[1].ID))
	if code, _ := other.Do("GET", "/api/v1/bakes", nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", code)
	}
	audit := mustOK(t, aminate(t, "bakery", "audit"))
	for _, want := range []string{"token.create", "token.revoke", "submit", "cancel", s.Bake.ID} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s:\n%s", want, audit)
		}
	}
	for _, bad := range []any{
		map[string]any{"package": deb, "region": "local"},
		map[string]any{"package": deb, "base_id": b, "region": "local", "colour": "blue"},
		map[string]any{"package": deb, "base_id": "ami-00000000000000000", "region": "local"},
		map[string]any{"package": "-oops", "base_id": b, "region": "local"},
		map[string]any{"package": "/etc/passwd", "base_id": b, "region": "local"},
		map[string]any{"package": "/dev/zero", "base_id": b, "region": "local"},
		map[string]any{"package": deb, "base_id": b, "region": "local", "tags": map[string]string{"channel": "release"}},
	} {
		if code, body := c.Do("POST", "/api/v1/bakes", bad); code != http.StatusBadRequest {
			t.Errorf("bad request %v: %d %s", bad, code, body)
		}
	}
	if code, _ := c.Do("GET", "/api/v1/bakes/nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown bake: %d", code)
	}
}
