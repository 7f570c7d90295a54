package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// freeAddr is a free 127.0.0.1 address.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve starts aminate serve with args on the shared cloud; the function
// it returns stops it.
func serve(t *testing.T, args ...string) func() { return serveOn(t, shared(), args...) }

// serveOn starts aminate serve with args on the cloud; the function it
// returns stops it (SIGTERM, then SIGKILL after 30 s) and, when the test
// has failed, logs what serve printed.
func serveOn(t *testing.T, c *cloud, args ...string) func() {
	t.Helper()
	srv := exec.Command(binary(), append([]string{"serve"}, args...)...)
	srv.Env = c.Env()
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
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
	}
}

// waitAPI waits until the API at c.url answers (401 without a token).
func waitAPI(t *testing.T, c bakeryClient) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(c.url + "/api/v1/whoami"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
	}
	t.Fatal(fmt.Errorf("the API at %s did not come up", c.url))
}
