// Package fetch downloads a package URL under rules meant for a service
// that fetches URLs strangers give it (issue 12): https only (plain http
// when the policy allows it), redirects only to https, and never a
// connection to a loopback, link-local (the instance metadata service at
// 169.254.169.254), private, unspecified, multicast or otherwise special
// address unless the policy's allow-list names it. The address check runs
// in the dialer's Control function, on the address about to be connected
// after name resolution, for the first request and every redirect, so a
// DNS answer that changes between a check and the connection (DNS
// rebinding) cannot get past it. A download is capped in size while it
// streams, its sha256 is checked when one is given, and it lands in a new
// file that is removed on any failure. Errors name the cause and the host
// but never carry the response's body.
//
// This is the download aminate itself makes of a bake's package URL; the
// downloads an image's package manager makes inside its sandbox go
// through the bake's egress proxy (internal/sandbox/egress) instead.
package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultMaxBytes is the size cap of a download when the policy sets none.
const DefaultMaxBytes int64 = 2 << 30

// maxRedirects is how many redirects a download follows.
const maxRedirects = 10

// Policy says what a download may do.
type Policy struct {
	// AllowHTTP accepts plain http URLs (and redirects to them).
	AllowHTTP bool
	// Allow lists what may be reached although it is special: CIDRs
	// (10.0.0.0/8), addresses (127.0.0.1), or host names (repo.internal),
	// whose every address is then accepted.
	Allow []string
	// MaxBytes caps a download (0: DefaultMaxBytes).
	MaxBytes int64
	// RootCAs are the certificates trusted for https (nil: the system's).
	RootCAs *x509.CertPool
}

// Fetcher downloads under a Policy.
type Fetcher struct {
	policy    Policy
	allow     allowList
	transport *http.Transport
}

// New makes a Fetcher; an allow-list entry that is not a CIDR, an address
// or a host name is an error.
func New(p Policy) (*Fetcher, error) {
	if p.MaxBytes <= 0 {
		p.MaxBytes = DefaultMaxBytes
	}
	allow, err := parseAllow(p.Allow)
	if err != nil {
		return nil, err
	}
	f := &Fetcher{policy: p, allow: allow}
	f.transport = &http.Transport{
		// No proxy from the environment: a proxy would connect wherever
		// it is asked, past the address check.
		Proxy:                 nil,
		DialContext:           f.dial,
		TLSClientConfig:       &tls.Config{RootCAs: p.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
	}
	return f, nil
}

// MaxBytes is the size cap in force.
func (f *Fetcher) MaxBytes() int64 { return f.policy.MaxBytes }

// Get downloads rawURL into a new file in dir named by pattern (as
// os.CreateTemp's) and returns its path; the caller removes it. With
// sha256hex the file's SHA-256 must be that (hex) or the download fails.
// On any error no file is left. Permanent says whether an error is one
// that another attempt cannot fix.
func (f *Fetcher) Get(ctx context.Context, rawURL, dir, pattern, sha256hex string) (path string, err error) {
	want, err := parseSum(sha256hex)
	if err != nil {
		return "", permanent{err}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", permanent{fmt.Errorf("%q is not a valid URL", rawURL)}
	}
	if err := f.checkScheme(u, ""); err != nil {
		return "", err
	}
	resp, err := f.request(ctx, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return f.save(resp, dir, pattern, want)
}

// request sends the GET and checks the answer's status, following
// redirects the policy accepts.
func (f *Fetcher) request(ctx context.Context, u *url.URL) (*http.Response, error) {
	hops := 0
	client := &http.Client{Transport: f.transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		hops++
		if hops > maxRedirects {
			return permanent{fmt.Errorf("more than %d redirects from %s", maxRedirects, u.Hostname())}
		}
		if err := f.checkScheme(req.URL, "redirect to "); err != nil {
			return err
		}
		return f.checkLiteral(req.URL, "redirect to ")
	}}
	if err := f.checkLiteral(u, "connection to "); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, permanent{err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, explain(err, u, hops > 0)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close() // its text is not ours to pass on
		err := fmt.Errorf("HTTP %d %s from %s", resp.StatusCode, http.StatusText(resp.StatusCode), resp.Request.URL.Hostname())
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, permanent{err}
		}
		return nil, err
	}
	return resp, nil
}

// checkScheme refuses anything but https, and http unless allowed.
func (f *Fetcher) checkScheme(u *url.URL, what string) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && f.policy.AllowHTTP:
		return nil
	case u.Scheme == "http":
		return permanent{fmt.Errorf("%splain http://%s refused: use https (download.allow_http allows http)", what, u.Host)}
	}
	return permanent{fmt.Errorf("%s%s://%s refused: only https", what, u.Scheme, u.Host)}
}

// checkLiteral refuses a URL whose host is a special address at once (the
// dialer would too; this says so before any connection is tried).
func (f *Fetcher) checkLiteral(u *url.URL, what string) error {
	if err := f.allow.check(u.Hostname(), u.Hostname()); err != nil {
		var r *refusal
		if errors.As(err, &r) {
			r.what = what
		}
		return permanent{err}
	}
	return nil
}

// dial connects to addr, with the address check in the dialer's Control
// function: it sees the address actually connected to, after resolution.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ip, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			return f.allow.check(host, ip)
		}}
	return d.DialContext(ctx, network, addr)
}

// explain turns a client error into one that names the cause: a refused
// address (after a redirect or not), or the failure without the URL's
// query.
func explain(err error, u *url.URL, redirected bool) error {
	var p permanent
	if errors.As(err, &p) {
		return p // refused by CheckRedirect: already says why
	}
	var r *refusal
	if errors.As(err, &r) {
		r.what = "connection to "
		if redirected {
			r.what = "redirect to "
		}
		return permanent{r}
	}
	host := u.Hostname()
	var ue *url.Error
	if errors.As(err, &ue) {
		if v, perr := url.Parse(ue.URL); perr == nil {
			host = v.Hostname()
		}
		err = ue.Err
	}
	return fmt.Errorf("fetch from %s: %w", host, err)
}

// save streams the body into a new file in dir, within the size cap and
// hashing as it goes; on any error the file is removed.
func (f *Fetcher) save(resp *http.Response, dir, pattern string, want []byte) (path string, err error) {
	host := resp.Request.URL.Hostname()
	limit := f.policy.MaxBytes
	if resp.ContentLength > limit {
		return "", permanent{tooLarge(host, limit)}
	}
	out, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("download: %w", cerr)
		}
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("download from %s: %w", host, err)
	case n > limit:
		return "", permanent{tooLarge(host, limit)}
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return "", fmt.Errorf("short download from %s: %d of %d bytes", host, n, resp.ContentLength)
	}
	if got := h.Sum(nil); want != nil && !bytes.Equal(got, want) {
		return "", permanent{fmt.Errorf("download from %s has sha256 %x, not the %x asked for", host, got, want)}
	}
	return out.Name(), nil
}

func tooLarge(host string, limit int64) error {
	return fmt.Errorf("download from %s is larger than the %d-byte cap (download.max_bytes)", host, limit)
}

// parseSum reads a hex SHA-256 ("" is none).
func parseSum(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.ToLower(s))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("sha256 %q is not 64 hexadecimal digits", s)
	}
	return b, nil
}

// CheckSum says whether s is a valid hex SHA-256 ("" is none).
func CheckSum(s string) error {
	_, err := parseSum(s)
	return err
}

// permanent marks an error that another attempt cannot fix: a refusal, an
// HTTP 4xx, a download over the cap, a wrong checksum.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent says whether err is one another attempt cannot fix.
func Permanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
