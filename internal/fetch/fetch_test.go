package fetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/testutil/fetchtest"
)

const secret = "internal scanner: db01 admin password"

var payload = []byte("a package's bytes")

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// server answers /ok with payload, /to?u=URL with a redirect to URL,
// /missing with a 404 whose body must never reach the requester, and
// /big and /bigcl with 4 KiB (streamed, or with a Content-Length).
func server(t *testing.T) *fetchtest.Server {
	return fetchtest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write(payload)
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case "/missing":
			http.Error(w, secret, http.StatusNotFound)
		case "/big":
			for range 4 {
				w.Write(bytes.Repeat([]byte("x"), 1024))
				w.(http.Flusher).Flush()
			}
		case "/bigcl":
			w.Header().Set("Content-Length", "4096")
			w.Write(bytes.Repeat([]byte("x"), 4096))
		}
	}))
}

// The rules, each tried against a real https server: what is refused
// says why, never echoes a body, and leaves no file.
func TestRules(t *testing.T) {
	srv := server(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	to := func(u string) string { return srv.URL + "/to?u=" + u }
	for _, tc := range []struct {
		name, url, sha, err string
		policy              func(*fetch.Policy)
	}{
		{name: "ok", url: srv.URL + "/ok", sha: sum(payload)},
		{name: "redirect to loopback", url: to("https://127.0.0.1" + port + "/ok"),
			err: "redirect to 127.0.0.1 refused: 127.0.0.1 is a loopback address"},
		{name: "redirect to the metadata service", url: to("https://169.254.169.254/latest/meta-data/"),
			err: "redirect to 169.254.169.254 refused: 169.254.169.254 is a link-local address"},
		{name: "redirect to a private address", url: to("https://10.1.2.3/x.deb"),
			err: "redirect to 10.1.2.3 refused: 10.1.2.3 is a private address"},
		{name: "redirect to IPv6 link-local", url: to("https://[fe80::1]/x.deb"), err: "is a link-local address"},
		{name: "redirect to a mapped private address", url: to("https://[::ffff:192.168.0.1]/x.deb"), err: "192.168.0.1 is a private address"},
		{name: "redirect to http", url: to("http://localhost" + port + "/ok"), err: "redirect to plain http://localhost" + port + " refused"},
		{name: "http", url: "http://localhost" + port + "/ok", err: "plain http://localhost" + port + " refused: use https"},
		{name: "loopback first", url: "https://127.0.0.1" + port + "/ok", err: "connection to 127.0.0.1 refused"},
		{name: "over the cap, streamed", url: srv.URL + "/big", err: "larger than the 1000-byte cap",
			policy: func(p *fetch.Policy) { p.MaxBytes = 1000 }},
		{name: "over the cap, announced", url: srv.URL + "/bigcl", err: "larger than the 1000-byte cap",
			policy: func(p *fetch.Policy) { p.MaxBytes = 1000 }},
		{name: "sha256 mismatch", url: srv.URL + "/ok", sha: sum([]byte("other")), err: "download from localhost has sha256 " + sum(payload) + ", not the " + sum([]byte("other"))},
		{name: "404", url: srv.URL + "/missing", err: "HTTP 404 Not Found from localhost"},
		{name: "allowed range", url: to("https://127.0.0.1" + port + "/ok"),
			policy: func(p *fetch.Policy) { p.Allow = append(p.Allow, "127.0.0.0/8") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fetch.Policy{Allow: []string{"localhost"}, RootCAs: srv.Pool}
			if tc.policy != nil {
				tc.policy(&p)
			}
			f, err := fetch.New(p)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path, err := f.Get(context.Background(), tc.url, dir, "dl-*", tc.sha)
			if tc.err == "" {
				if b, rerr := os.ReadFile(path); err != nil || rerr != nil || !bytes.Equal(b, payload) {
					t.Fatalf("Get: %v, %v, %q", err, rerr, b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Get: %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "scanner") {
				t.Errorf("the answer's body reached the requester: %v", err)
			}
			if !fetch.Permanent(err) {
				t.Errorf("%v is worth another attempt?", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left %v", ents)
			}
		})
	}
}

// A host name is checked on the address it resolves to, when the
// connection is made: a redirect from an allowed server (127.0.0.2) to
// the name localhost is refused for the loopback address it leads to.
func TestNameCheckedAtConnect(t *testing.T) {
	lo := server(t)
	srv := fetchtest.NewServerOn(t, "127.0.0.2", lo.Config.Handler)
	f, err := fetch.New(fetch.Policy{Allow: []string{"127.0.0.2"}, RootCAs: srv.Pool})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := f.Get(context.Background(), srv.URL+"/ok", dir, "dl-*", ""); err != nil {
		t.Fatalf("the allowed address: %v", err)
	}
	_, err = f.Get(context.Background(), srv.URL+"/to?u="+lo.URL+"/ok", dir, "dl-*", "")
	if err == nil || !strings.Contains(err.Error(), "redirect to localhost refused: 127.0.0.1 is a loopback address") {
		t.Errorf("redirect to localhost: %v", err)
	}
	_, err = f.Get(context.Background(), lo.URL+"/ok", dir, "dl-*", "")
	if err == nil || !strings.Contains(err.Error(), "connection to localhost refused: 127.0.0.1 is a loopback address") {
		t.Errorf("localhost: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files: %v", ents)
	}
}

func TestAllowList(t *testing.T) {
	if _, err := fetch.New(fetch.Policy{Allow: []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8", "repo.internal"}}); err != nil {
		t.Error(err)
	}
	if _, err := fetch.New(fetch.Policy{Allow: []string{"not a host!"}}); err == nil || !strings.Contains(err.Error(), "not a CIDR") {
		t.Errorf("bad entry: %v", err)
	}
	f, _ := fetch.New(fetch.Policy{})
	if _, err := f.Get(context.Background(), "https://x.invalid/", t.TempDir(), "x", "abc"); err == nil || !strings.Contains(err.Error(), "64 hexadecimal") {
		t.Errorf("bad sha256: %v", err)
	}
}

// A proxy named in the environment is not used: it would connect to
// whatever address it is asked for, past the address check.
func TestNoProxyFromEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "proxy", http.StatusBadGateway)
	}))
	defer proxy.Close()
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("HTTP_PROXY", proxy.URL)
	// .invalid never resolves: through a proxy the request would reach it
	// (the proxy resolves), directly it fails at the name. The proxy's
	// address is allowed, or the check would refuse the proxy itself.
	f, _ := fetch.New(fetch.Policy{Allow: []string{"127.0.0.1"}})
	_, err := f.Get(context.Background(), "https://aminator-test.invalid/x.deb", t.TempDir(), "dl-*", "")
	if err == nil || proxied.Load() != 0 {
		t.Errorf("Get: %v, %d requests through the proxy", err, proxied.Load())
	}
}
