package boottest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckPorts(t *testing.T) {
	if err := CheckPorts([]int{80, 8080}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]int{{0}, {65536}, {-1}, {80, 80}} {
		if err := CheckPorts(bad); err == nil {
			t.Errorf("CheckPorts(%v) passed", bad)
		}
	}
}

// Without ports the VM has no network at all; with them, a restricted user
// network forwarding each from the host's loopback only.
func TestNetArgs(t *testing.T) {
	if got := strings.Join(netArgs(nil), " "); got != "-nic none" {
		t.Errorf("no forwards: %s", got)
	}
	got := strings.Join(netArgs([]forward{{80, 40001}, {8080, 40002}}), " ")
	want := "-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40001-:80,hostfwd=tcp:127.0.0.1:40002-:8080 -device virtio-net-pci,netdev=net0,romfile="
	if got != want {
		t.Errorf("forwards:\n got %s\nwant %s", got, want)
	}
	fw, err := forwards([]int{80, 8080})
	if err != nil || len(fw) != 2 || fw[0].host == fw[1].host || fw[0].host == 0 {
		t.Errorf("forwards: %v %v", fw, err)
	}
}

// A port answering 200, one answering 503 until it answers 404, a
// redirect (an answer, not followed) and a port nobody listens on: the
// first three count as answered, the last is named with why.
func TestWatchHTTP(t *testing.T) {
	pollEvery = 20 * time.Millisecond
	defer func() { pollEvery = time.Second }()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	var n atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	defer slow.Close()
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/", http.StatusFound))
	defer redirect.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	port := func(s *httptest.Server) int { return s.Listener.Addr().(*net.TCPAddr).Port }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all := watchHTTP(ctx, []forward{{80, port(ok)}, {8080, port(slow)}, {8443, port(redirect)}}, nil, time.Now())
	select {
	case <-all.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("not all answered: %s", all.missing())
	}
	for i, want := range []int{200, 404, 302} {
		if c := all.results()[i]; c.Status != want || c.After <= 0 {
			t.Errorf("port %d: %+v, want status %d", c.Port, c, want)
		}
	}

	some := watchHTTP(ctx, []forward{{80, port(ok)}, {81, closed}}, nil, time.Now())
	time.Sleep(200 * time.Millisecond)
	select {
	case <-some.done:
		t.Fatal("done with a port that never answered")
	default:
	}
	if m := some.missing(); !strings.Contains(m, "guest port 81 (no HTTP answer") || strings.Contains(m, "port 80") {
		t.Errorf("missing: %q", m)
	}
}
