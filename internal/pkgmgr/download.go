package pkgmgr

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// download fetches u into a new file in the driver's TmpDir, retrying
// transient failures (not a 4xx answer); the caller removes the file.
func (d *Driver) download(ctx context.Context, u string) (string, error) {
	if err := os.MkdirAll(d.o.TmpDir, 0o700); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	var file string
	err := retry(ctx, d.o.Log, "download "+u, d.o.DownloadRetries, d.o.Backoff, func() (err error) {
		file, err = d.fetch(ctx, u)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("download %s: %w", u, err)
	}
	return file, nil
}

// fetch is one attempt at a download, bounded by DownloadTimeout.
func (d *Driver) fetch(ctx context.Context, u string) (string, error) {
	timeout := d.o.DownloadTimeout
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
	f, err := os.CreateTemp(d.o.TmpDir, "download-*"+d.format.Ext())
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
