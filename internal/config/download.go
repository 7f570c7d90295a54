package config

import (
	"crypto/x509"
	"os"

	"github.com/aminator-go/aminator/internal/fetch"
)

// Download is how aminate itself downloads a bake's package URL (see
// internal/fetch): https only unless AllowHTTP, never to a loopback,
// link-local, private or other special address unless Allow names it,
// at most MaxBytes.
type Download struct {
	// AllowHTTP accepts plain http package URLs and redirects to them.
	AllowHTTP bool `yaml:"allow_http"`
	// Allow lists CIDRs, addresses or host names that may be reached
	// although they are special (an internal repository).
	Allow []string `yaml:"allow"`
	// MaxBytes caps a download (0: 2 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// CAFile holds PEM certificates trusted for https besides the
	// system's.
	CAFile string `yaml:"ca_file"`
}

// Fetcher is the downloader these settings make.
func (d Download) Fetcher() (*fetch.Fetcher, error) {
	p := fetch.Policy{AllowHTTP: d.AllowHTTP, Allow: d.Allow, MaxBytes: d.MaxBytes}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, errorf("download.ca_file: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errorf("download.ca_file: %s holds no PEM certificate", d.CAFile)
		}
		p.RootCAs = pool
	}
	f, err := fetch.New(p)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return f, nil
}

// checkDownload checks the download settings as they are loaded.
func (c *Config) checkDownload() error {
	if c.Download.MaxBytes < 0 {
		return c.bad("download.max_bytes", "%d: bytes, 0 or more", c.Download.MaxBytes)
	}
	_, err := c.Download.Fetcher()
	return err
}
