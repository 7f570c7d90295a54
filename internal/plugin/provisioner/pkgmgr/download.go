package pkgmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/plugin"
)

// localize gives a URL or file package the file the bake installs: a
// URL's is downloaded (under the fetcher's rules, its sha256 checked); a
// file with a SHA256 is copied into the bake's own file as it is hashed,
// so what is installed is exactly the bytes that were checked, whatever
// happens to the original later. The result is Private (the caller
// removes Path). Anything else comes back as it is.
func (d *Driver) localize(ctx context.Context, ref plugin.PackageRef) (plugin.PackageRef, error) {
	if err := fetch.CheckSum(ref.SHA256); err != nil {
		return ref, fmt.Errorf("package %w", err)
	}
	var file string
	var err error
	switch {
	case ref.Private:
		return ref, nil
	case ref.Kind == kindURL && ref.Path == "":
		file, err = d.download(ctx, ref.URL, ref.SHA256)
	case ref.Kind == kindFile && ref.SHA256 != "":
		file, err = d.copyChecked(ref.Path, ref.SHA256)
	default:
		return ref, nil
	}
	if err != nil {
		return ref, err
	}
	ref.Path, ref.Private = file, true
	return ref, nil
}

// download fetches u into a new file in the driver's TmpDir, retrying
// transient failures (not a refusal, a 4xx or a wrong checksum); the
// caller removes the file.
func (d *Driver) download(ctx context.Context, u, sum string) (string, error) {
	if err := os.MkdirAll(d.o.TmpDir, 0o700); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	var file string
	err := retry(ctx, d.o.Log, "download "+u, d.o.DownloadRetries, d.o.Backoff, func() (err error) {
		file, err = d.fetch(ctx, u, sum)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("download %s: %w", u, err)
	}
	return file, nil
}

// fetch is one attempt at a download, bounded by DownloadTimeout.
func (d *Driver) fetch(ctx context.Context, u, sum string) (string, error) {
	timeout := d.o.DownloadTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	file, err := d.o.Fetcher.Get(ctx, u, d.o.TmpDir, "download-*"+d.format.Ext(), sum)
	if fetch.Permanent(err) {
		return "", permanent{err}
	}
	return file, err
}

// copyChecked copies the package file at src into a new file in TmpDir,
// hashing the bytes as they are copied; unless they hash to sum, the
// copy is removed and the package refused. What src names may have
// changed since it was checked: only a regular file is read (a FIFO put
// there is not waited on), and no more of it than the download cap.
func (d *Driver) copyChecked(src, sum string) (file string, err error) {
	in, err := openRegular(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if err := os.MkdirAll(d.o.TmpDir, 0o700); err != nil {
		return "", fmt.Errorf("package file: %w", err)
	}
	out, err := os.CreateTemp(d.o.TmpDir, "package-*"+d.format.Ext())
	if err != nil {
		return "", fmt.Errorf("package file: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("package file: %w", cerr)
		}
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	h := sha256.New()
	limit := d.o.Fetcher.MaxBytes()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, limit+1))
	if err != nil {
		return "", fmt.Errorf("package file %s: %w", src, err)
	}
	if n > limit {
		return "", fmt.Errorf("package file %s is larger than the %d-byte cap (download.max_bytes)", src, limit)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sum) {
		return "", fmt.Errorf("package file %s has sha256 %s, not the %s asked for (it changed?)", src, got, strings.ToLower(sum))
	}
	return out.Name(), nil
}

// openRegular opens path for reading if it is a regular file, without
// blocking on a FIFO.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("package file: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("package file %s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
