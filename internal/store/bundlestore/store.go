// Package bundlestore keeps the bundles of S3-backed images (see
// s3bundle) in an S3 bucket, as ec2-upload-bundle does: every part, in
// parallel with retries, then the manifest last, each PUT with Content-MD5
// and an ACL that lets EC2 read it (aws-exec-read by default). An upload
// resumes: a part already in the bucket with the same MD5 is not sent
// again. Every object is tagged with its bundle's name and the host that
// wrote it, so that gc finds the bundles no image uses (an upload killed
// half way, an image deregistered) and removes them, manifest first.
package bundlestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Tags the objects of a bundle carry.
const (
	TagBundle = "aminator-bundle"
	TagHost   = "aminator-host"
)

// Options tune a store.
type Options struct {
	// ACL is the canned ACL of every object (default aws-exec-read).
	ACL string
	// Workers is how many parts are sent at once (default 4).
	Workers int
	// Attempts is how many times a part is tried (default 4).
	Attempts int
	Log      *slog.Logger
	// LockDir, if set, holds the flocks of uploads running on this host
	// (gc leaves their bundles alone).
	LockDir string
	// S3Options adjust the client (tests).
	S3Options []func(*s3.Options)
}

// Store is a bucket (and a key prefix) holding bundles.
type Store struct {
	s3             *s3.Client
	bucket, prefix string
	o              Options
	host           string
}

// New opens the store at location, "BUCKET" or "BUCKET/PREFIX", with the
// AWS configuration's credentials (the standard chain).
func New(cfg aws.Config, location string, o Options) (*Store, error) {
	bucket, prefix, _ := strings.Cut(strings.Trim(location, "/"), "/")
	if !validBucket(bucket) {
		return nil, fmt.Errorf("bucket %q is not an S3 bucket name", bucket)
	}
	if o.ACL == "" {
		o.ACL = string(types.ObjectCannedACLAwsExecRead)
	}
	if !validACL(o.ACL) {
		return nil, fmt.Errorf("acl %q is not a canned S3 ACL", o.ACL)
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	opts := append([]func(*s3.Options){func(so *s3.Options) {
		// A custom endpoint (AWS_ENDPOINT_URL: a test's moto, a private
		// endpoint) takes bucket names in the path.
		so.UsePathStyle = cfg.BaseEndpoint != nil
		// Parts are checked by their SHA-1s; a GET without an S3 checksum is no news.
		so.DisableLogOutputChecksumValidationSkipped = true
	}}, o.S3Options...)
	host, _ := os.Hostname()
	if prefix != "" {
		prefix += "/"
	}
	return &Store{s3: s3.NewFromConfig(cfg, opts...), bucket: bucket, prefix: prefix, o: o, host: host}, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func validACL(acl string) bool {
	for _, v := range types.ObjectCannedACL("").Values() {
		if string(v) == acl {
			return true
		}
	}
	return false
}

// Bucket is the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// key is an object's key in the bucket.
func (s *Store) key(file string) string { return s.prefix + file }

// ManifestLocation is what RegisterImage takes: BUCKET/[PREFIX/]NAME.manifest.xml.
func (s *Store) ManifestLocation(name string) string {
	return s.bucket + "/" + s.key(name+".manifest.xml")
}

// CheckBucket says clearly when the bucket is missing or not ours to write.
func (s *Store) CheckBucket(ctx context.Context) error {
	_, err := s.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	return s.explain("bucket "+s.bucket, err)
}

// explain turns S3's answers into errors that say what to do.
func (s *Store) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	var re *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var nb *types.NoSuchBucket
	var ae smithy.APIError
	switch {
	case errors.As(err, &nb), status == http.StatusNotFound && strings.HasPrefix(what, "bucket"),
		errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket":
		return fmt.Errorf("%s: the bucket %s does not exist (create it in the image's region first): %w", what, s.bucket, err)
	case status == http.StatusForbidden:
		return fmt.Errorf("%s: access denied (403): these credentials may not write to the bucket %s: %w", what, s.bucket, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
