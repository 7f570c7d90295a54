package boottest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A boot test can also prove services answer: each guest port in
// Options.ExpectHTTP is forwarded by qemu's user networking (slirp) to a
// free port on the host's loopback, and polled with an HTTP GET until it
// answers with a status below 500. The network is restricted: the guest
// reaches neither the host nor anything beyond it; only the forwards come
// in. The guest gets its address (10.0.2.15) from slirp's DHCP server, so
// the image must configure its network by DHCP.

// HTTPCheck is how one guest port answered.
type HTTPCheck struct {
	Port int `json:"port"`
	// Status is the HTTP status of the first answer below 500 (0: none).
	Status int `json:"status,omitempty"`
	// After is how long after qemu started the port answered.
	After time.Duration `json:"after_ns,omitempty"`
	// Last is the last failed attempt's error or status, for a port that
	// never answered.
	Last string `json:"last,omitempty"`
}

// forward is a guest port and the host loopback port it is forwarded to.
type forward struct{ guest, host int }

// pollEvery is how often a port that has not answered is asked again
// (tests shorten it).
var pollEvery = time.Second

// CheckPorts reports a bad list of guest ports.
func CheckPorts(ports []int) error {
	for i, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("--expect-http %d: not a TCP port (1-65535)", p)
		}
		if slices.Contains(ports[:i], p) {
			return fmt.Errorf("--expect-http %d: given twice", p)
		}
	}
	return nil
}

// forwards picks a free host loopback port for each guest port. The port
// is free when picked; qemu binds it a moment later (a port taken
// meanwhile makes qemu fail at once, which the boot reports).
func forwards(ports []int) ([]forward, error) {
	return forwardsOn(ports, net.Listen)
}

// forwardsOn picks, with listen, a free loopback port for each guest port.
func forwardsOn(ports []int, listen func(network, addr string) (net.Listener, error)) ([]forward, error) {
	var fw []forward
	for _, p := range ports {
		l, err := listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a host port for guest port %d: %w", p, err)
		}
		fw = append(fw, forward{guest: p, host: l.Addr().(*net.TCPAddr).Port})
		l.Close()
	}
	return fw, nil
}

// netArgs is the VM's network: none, or a restricted user network with
// the forwards (virtio-net without an option ROM, so firmware does not try
// to boot from it).
func netArgs(fw []forward) []string {
	if len(fw) == 0 {
		return []string{"-nic", "none"}
	}
	netdev := "user,id=net0,restrict=on"
	for _, f := range fw {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.host, f.guest)
	}
	return []string{"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile="}
}

// httpWatch polls the forwarded ports until each has answered; done is
// closed when all have.
type httpWatch struct {
	mu     sync.Mutex
	checks []HTTPCheck
	done   chan struct{}
}

// watchHTTP starts polling fw (closing done at once when fw is empty)
// until ctx ends; start is when qemu started.
func watchHTTP(ctx context.Context, fw []forward, dial func(ctx context.Context, network, addr string) (net.Conn, error), start time.Time) *httpWatch {
	w := &httpWatch{done: make(chan struct{}), checks: make([]HTTPCheck, len(fw))}
	client := &http.Client{
		Timeout: 5 * time.Second,
		// No proxy from the environment, and a redirect is an answer, not
		// an address to follow.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: dial},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var wg sync.WaitGroup
	for i, f := range fw {
		w.checks[i].Port = f.guest
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.poll(ctx, client, i, "http://127.0.0.1:"+strconv.Itoa(f.host)+"/", start)
		}()
	}
	go func() {
		wg.Wait()
		if w.answered() {
			close(w.done)
		}
	}()
	return w
}

// poll asks url until it answers below 500 or ctx ends.
func (w *httpWatch) poll(ctx context.Context, client *http.Client, i int, url string, start time.Time) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		status, last := get(ctx, client, url)
		w.mu.Lock()
		if status > 0 && status < 500 {
			w.checks[i].Status, w.checks[i].After, w.checks[i].Last = status, time.Since(start), ""
		} else {
			w.checks[i].Last = last
		}
		w.mu.Unlock()
		if status > 0 && status < 500 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// get does one GET and returns its status, or 0 and why not.
func get(ctx context.Context, client *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, "no answer within " + client.Timeout.String()
		}
		return 0, "no HTTP answer (" + lastCause(err) + ")"
	}
	resp.Body.Close()
	return resp.StatusCode, "HTTP " + resp.Status
}

// lastCause is the innermost part of a wrapped network error's text.
func lastCause(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func (w *httpWatch) answered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.checks {
		if c.Status == 0 {
			return false
		}
	}
	return true
}

// results is a copy of the checks so far.
func (w *httpWatch) results() []HTTPCheck {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.checks)
}

// missing says which ports have not answered, and how they last failed.
func (w *httpWatch) missing() string {
	var out []string
	for _, c := range w.results() {
		if c.Status == 0 {
			out = append(out, fmt.Sprintf("guest port %d (%s)", c.Port, c.Last))
		}
	}
	return strings.Join(out, ", ")
}
