package bundlestore

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// Uploaded is what an upload did.
type Uploaded struct {
	ManifestLocation string `json:"manifest_location"`
	PartsSent        int    `json:"parts_sent"`
	PartsKept        int    `json:"parts_resumed"` // already in the bucket, not sent again
	BytesSent        int64  `json:"bytes_sent"`
}

// Upload puts the bundle of m, written in dir, into the bucket: the parts
// (in parallel, each retried, those already there with the same MD5
// kept), then the manifest. Only then is the bundle whole; a bundle with
// no manifest is never registered and gc removes it.
func (s *Store) Upload(ctx context.Context, dir string, m *s3bundle.Manifest) (*Uploaded, error) {
	if err := s.CheckBucket(ctx); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	up := &Uploaded{ManifestLocation: s.ManifestLocation(m.Name)}
	if err := s.putParts(ctx, dir, m, up); err != nil {
		return nil, err
	}
	if _, err := s.putFile(ctx, filepath.Join(dir, m.Name+".manifest.xml"), m.Name, false); err != nil {
		return nil, err
	}
	s.o.Log.Info("bundle uploaded", "manifest", up.ManifestLocation, "parts_sent", up.PartsSent, "parts_kept", up.PartsKept)
	return up, nil
}

// lock holds this host's flock on the bundle while it uploads.
func (s *Store) lock(ctx context.Context, name string) (func(), error) {
	if s.o.LockDir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(s.o.LockDir, 0o755); err != nil {
		return nil, err
	}
	l, err := flock.Exclusive(ctx, s.lockPath(name))
	if err != nil {
		return nil, fmt.Errorf("lock bundle %s: %w", name, err)
	}
	return func() { l.Unlock() }, nil
}

func (s *Store) lockPath(name string) string {
	return filepath.Join(s.o.LockDir, "bundle-"+s.bucket+"-"+strings.ReplaceAll(s.prefix, "/", "_")+name+".lock")
}

func (s *Store) putParts(ctx context.Context, dir string, m *s3bundle.Manifest, up *Uploaded) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, s.o.Workers)
	var wg sync.WaitGroup
	for _, p := range m.Parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sent, err := s.putFile(ctx, filepath.Join(dir, p.Name), m.Name, true)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
				cancel()
			case sent < 0:
				up.PartsKept++
			default:
				up.PartsSent++
				up.BytesSent += sent
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// putFile PUTs one file of the bundle, with Content-MD5, the ACL and the
// bundle's tags, tried up to Attempts times. A part already in the
// bucket with the same MD5 is kept (it returns -1).
func (s *Store) putFile(ctx context.Context, path, bundle string, resume bool) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := md5.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	sum := h.Sum(nil)
	key := s.key(filepath.Base(path))
	if resume && s.has(ctx, key, hex.EncodeToString(sum), size) {
		return -1, nil
	}
	tags := url.Values{TagBundle: {bundle}, TagHost: {s.host}}.Encode()
	for attempt := 1; ; attempt++ {
		_, err = s.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), Body: io.NewSectionReader(f, 0, size),
			ContentLength: aws.Int64(size), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum)),
			ACL: types.ObjectCannedACL(s.o.ACL), Tagging: aws.String(tags),
		})
		if err == nil || attempt >= s.o.Attempts || ctx.Err() != nil || permanent(err) {
			break
		}
		s.o.Log.Warn("part upload failed, retrying", "key", key, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
		}
	}
	if err != nil {
		return 0, s.explain("put s3://"+s.bucket+"/"+key, err)
	}
	return size, nil
}

// has says whether key is in the bucket with this MD5 and size.
func (s *Store) has(ctx context.Context, key, md5hex string, size int64) bool {
	out, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	return err == nil && strings.Trim(aws.ToString(out.ETag), `"`) == md5hex && aws.ToInt64(out.ContentLength) == size
}

// permanent errors are not worth a retry: a missing bucket, no access.
func permanent(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 && re.HTTPStatusCode() != 408 && re.HTTPStatusCode() != 429
}
