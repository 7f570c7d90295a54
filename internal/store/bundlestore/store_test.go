package bundlestore

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// s3Request is one request the store sent.
type s3Request struct {
	Method, Path string
	Header       http.Header
}

// transport records S3 requests and can answer some itself.
type transport struct {
	mu     sync.Mutex
	reqs   []s3Request
	inject func(r *http.Request) *http.Response
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.reqs = append(t.reqs, s3Request{r.Method, r.URL.Path, r.Header.Clone()})
	inject := t.inject
	t.mu.Unlock()
	if inject != nil {
		if resp := inject(r); resp != nil {
			if r.Body != nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			resp.Request = r
			return resp, nil
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (t *transport) puts(suffix string) []s3Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []s3Request
	for _, r := range t.reqs {
		if r.Method == http.MethodPut && strings.HasSuffix(r.Path, suffix) && strings.Count(r.Path, "/") > 1 {
			out = append(out, r)
		}
	}
	return out
}

func s3Error(status int, code string) *http.Response {
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>injected</Message></Error>`
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {"application/xml"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

type fixture struct {
	bucket string
	cfg    aws.Config
	tr     *transport
	admin  *s3.Client
	o      s3bundle.Options
	disk   string
}

// TestMoto runs the store's tests against one moto server, each in a
// bucket of its own.
func TestMoto(t *testing.T) {
	ec2test.Start(t)
	for name, fn := range map[string]func(*testing.T, *fixture){
		"UploadRoundTrip": testUploadRoundTrip, "UploadResumeRetryAndDenied": testUploadResumeRetryAndDenied,
		"MissingBucket": testMissingBucket, "GCRemovesHalfBundles": testGCRemovesHalfBundles,
		"PublishFailureRemoves": testPublishFailureRemoves,
	} {
		t.Run(name, func(t *testing.T) { fn(t, newFixture(t, strings.ToLower(name))) })
	}
}

func newFixture(t *testing.T, bucket string) *fixture {
	t.Helper()
	f := &fixture{bucket: bucket, tr: &transport{}}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(&http.Client{Transport: f.tr}))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.admin = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := f.admin.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	c, _ := x509.ParseCertificate(der)
	f.o = s3bundle.Options{Account: "123456789012", Arch: "x86_64", UserCert: c, Key: k, Region: "us-east-1", PartSize: 256 << 10}
	f.disk = filepath.Join(t.TempDir(), "app.img")
	b := make([]byte, 3<<20)
	rand.Read(b[:2<<20])
	if err := os.WriteFile(f.disk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) bundle(t *testing.T) (string, *s3bundle.Manifest) {
	t.Helper()
	dir := t.TempDir()
	res, err := s3bundle.Bundle(context.Background(), f.disk, dir, f.o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, res.Manifest
}

func (f *fixture) store(t *testing.T, location string, o Options) *Store {
	t.Helper()
	s, err := New(f.cfg, location, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) keys(t *testing.T) []string {
	t.Helper()
	out, err := f.admin.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
