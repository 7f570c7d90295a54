// Package egress is the bake's egress proxy for the downloads a package
// manager makes inside its sandbox (issue 10): an HTTP proxy, on a Unix
// socket the sandbox forwards its 127.0.0.1 proxy port to, that reaches
// only the hosts of the image's package sources (apt's sources, yum's
// repositories) and never a link-local address (the instance metadata
// service at 169.254.169.254) or the host's loopback, whatever a name
// resolves to.
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proxy is a running egress proxy.
type Proxy struct {
	// Dir holds the socket (Socket).
	Dir   string
	allow map[string]bool
	srv   *http.Server
	log   *slog.Logger
}

// Socket is the socket's name in Dir (sandbox.ProxySocket).
const Socket = "proxy.sock"

// AnyHost in the allowed hosts lets every host through (yum mirror lists).
const AnyHost = "*"

// Start serves a proxy to hosts (host names, lower case) on a socket in
// a new directory under tmp.
func Start(tmp string, hosts []string, log *slog.Logger) (*Proxy, error) {
	dir, err := os.MkdirTemp(tmp, "aminator-egress-")
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, Socket))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	p := &Proxy{Dir: dir, allow: map[string]bool{}, log: log}
	for _, h := range hosts {
		p.allow[strings.ToLower(h)] = true
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy and removes its socket.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	if rerr := os.RemoveAll(p.Dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// dialer refuses loopback, link-local and unspecified addresses at connect
// time, after name resolution, so no DNS answer can lead there.
var dialer = &net.Dialer{Timeout: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("egress to %s refused: not a package source's address", host)
	}
	return nil
}}

var transport = &http.Transport{DialContext: dialer.DialContext, Proxy: nil, ResponseHeaderTimeout: 5 * time.Minute}

// ServeHTTP serves CONNECT (https) and absolute-URI requests (http) to the
// allowed hosts.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Hostname()
	if r.Method == http.MethodConnect {
		host, _, _ = net.SplitHostPort(r.Host)
	}
	if !p.allow[strings.ToLower(host)] && !p.allow[AnyHost] {
		p.log.Warn("egress refused: not a package source", "host", host)
		http.Error(w, "aminator: "+host+" is not one of the image's package sources", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Connection")
	out.Header.Del("Proxy-Authorization")
	resp, err := transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "aminator egress: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	up, err := dialer.DialContext(ctx, "tcp", r.Host)
	if err != nil {
		http.Error(w, "aminator egress: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "aminator egress: cannot tunnel", http.StatusInternalServerError)
		return
	}
	c, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, buf); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}
