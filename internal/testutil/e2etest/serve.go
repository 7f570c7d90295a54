package e2etest

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/api"
)

// FreeAddr is a free 127.0.0.1 address.
func FreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Serve starts aminate serve with args on the cloud; the function it
// returns stops it (SIGTERM, then SIGKILL after 30 s) and, when the test
// has failed, logs what serve printed.
func (c *Cloud) Serve(t *testing.T, args ...string) func() {
	t.Helper()
	stop, _ := c.ServeLog(t, args...)
	return stop
}

// ServeLog is Serve that also returns what serve has printed so far.
func (c *Cloud) ServeLog(t *testing.T, args ...string) (stop func(), printed func() string) {
	t.Helper()
	srv := exec.Command(binary, append([]string{"serve"}, args...)...)
	srv.Env = c.Env()
	logs := &lockedBuffer{}
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			t.Error("serve did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("serve %v:\n%s", args, logs.String())
		}
	}, logs.String
}

// lockedBuffer is what a child process printed, read while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitAPI waits until the bakery API at url answers (401 without a token).
func WaitAPI(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/api/v1/whoami"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
	}
	t.Fatalf("the API at %s did not come up", url)
}

// BakeryClient calls a bakery's API at URL as a test, with a team's Token.
type BakeryClient struct {
	T          *testing.T
	URL, Token string
}

// Do sends a request with body as JSON and returns the status and the body.
func (c BakeryClient) Do(method, path string, body any) (int, []byte) {
	c.T.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Submit submits a bake request; the test fails unless it is accepted.
func (c BakeryClient) Submit(req bakery.Request) (int, api.SubmitResponse) {
	c.T.Helper()
	code, b := c.Do("POST", "/api/v1/bakes", req)
	var r api.SubmitResponse
	json.Unmarshal(b, &r)
	if code >= 300 {
		c.T.Fatalf("submit: %d %s", code, b)
	}
	return code, r
}

// Wait waits up to 3 minutes for a bake to reach one of states.
func (c BakeryClient) Wait(id string, states ...string) *bakery.Record {
	c.T.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		_, b := c.Do("GET", "/api/v1/bakes/"+id, nil)
		var r bakery.Record
		json.Unmarshal(b, &r)
		for _, s := range states {
			if r.State == s {
				return &r
			}
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("bake %s still %s (want %v)", id, r.State, states)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
