// Package pkgref is what every provisioner does with the PACKAGE argument
// before its package manager takes over: tell a URL from a local file from
// a repository name, check the file, and download a URL with retries.
package pkgref

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
)

// Parse classifies raw: an http(s) URL, a local file (a path, file://, or
// a name ending in ext such as ".deb"), or else a repository package,
// which repo checks and fills in.
func Parse(raw, ext string, repo func(r *plugin.PackageRef) error) (plugin.PackageRef, error) {
	r := plugin.PackageRef{Raw: raw}
	switch {
	case raw == "":
		return r, errors.New("no package given")
	case strings.HasPrefix(raw, "http://") || strings.HasPrefix(raw, "https://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return r, fmt.Errorf("package URL %q is not a valid URL", raw)
		}
		r.Kind, r.URL = "url", raw
	case strings.HasPrefix(raw, "file://") || strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") ||
		strings.HasPrefix(raw, "../") || strings.HasSuffix(raw, ext):
		p := strings.TrimPrefix(raw, "file://")
		abs, err := filepath.Abs(p)
		if err != nil {
			return r, fmt.Errorf("package file %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return r, fmt.Errorf("package file: %w", err)
		}
		if !st.Mode().IsRegular() {
			return r, fmt.Errorf("package file %s is not a regular file", abs)
		}
		r.Kind, r.Path = "file", abs
	default:
		r.Kind = "repo"
		if err := repo(&r); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Downloader fetches package URLs to files on the host.
type Downloader struct {
	Dir     string
	Ext     string
	Retries int
	Timeout time.Duration
	Log     *slog.Logger
}

type permanent struct{ error }

// Fetch downloads u into a new file in Dir, retrying transient failures
// (not a 4xx answer); the caller removes the file.
func (d *Downloader) Fetch(ctx context.Context, u string) (string, error) {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	var lastErr error
	for i := 1; i <= max(1, d.Retries); i++ {
		f, err := d.fetch(ctx, u)
		if err == nil {
			return f, nil
		}
		lastErr = err
		var perm permanent
		if ctx.Err() != nil || errors.As(err, &perm) {
			break
		}
		if d.Log != nil {
			d.Log.Warn("download failed; retrying", "url", u, "attempt", i, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(i) * time.Second):
		}
	}
	return "", fmt.Errorf("download %s: %w", u, lastErr)
}

func (d *Downloader) fetch(ctx context.Context, u string) (string, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", permanent{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("HTTP %s", resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return "", permanent{err}
		}
		return "", err
	}
	f, err := os.CreateTemp(d.Dir, "download-*"+d.Ext)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("short download: %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Stage shows the host file at a fresh path under the image's /tmp, named
// base (say package.deb), and returns that path as the chroot sees it. The
// file is bind-mounted read-only, not copied: its bytes never land in the
// image, nor in its snapshot. done removes it.
func Stage(c plugin.Chroot, file, base string) (inImage string, done func(), err error) {
	var b [6]byte
	rand.Read(b[:])
	dir := "tmp/aminator-" + hex.EncodeToString(b[:])
	if err := c.Root().MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("stage package in the image: %w", err)
	}
	rel := dir + "/" + base
	unbind, err := c.BindFile(file, rel)
	if err != nil {
		c.Root().RemoveAll(dir)
		return "", nil, err
	}
	return "/" + rel, func() {
		unbind()
		c.Root().RemoveAll(dir)
	}, nil
}
