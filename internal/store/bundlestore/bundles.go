package bundlestore

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// Bundle is a bundle's objects in the bucket.
type Bundle struct {
	Name     string    `json:"name"`
	Location string    `json:"manifest_location"`
	Keys     []string  `json:"keys"` // the manifest (if any) first, then the parts
	Manifest bool      `json:"has_manifest"`
	Host     string    `json:"host"`
	Modified time.Time `json:"modified"` // of its newest object
}

var objectRE = regexp.MustCompile(`^(.+)\.(manifest\.xml|part\.[0-9]+)$`)

// Bundles lists the bundles of the store that aminator wrote (tagged
// with TagBundle); other objects are left out.
func (s *Store) Bundles(ctx context.Context) ([]*Bundle, error) {
	by := map[string]*Bundle{}
	p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.explain("list bucket "+s.bucket, err)
		}
		for _, o := range page.Contents {
			s.addObject(by, o)
		}
	}
	var out []*Bundle
	for _, b := range by {
		tags, err := s.tags(ctx, b.Keys[0])
		if err != nil {
			return nil, err
		}
		if tags[TagBundle] != b.Name {
			continue // not ours
		}
		b.Host = tags[TagHost]
		sort.SliceStable(b.Keys, func(i, j int) bool { return strings.HasSuffix(b.Keys[i], ".manifest.xml") })
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) addObject(by map[string]*Bundle, o types.Object) {
	rel := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
	m := objectRE.FindStringSubmatch(rel)
	if m == nil || strings.Contains(rel, "/") {
		return
	}
	b := by[m[1]]
	if b == nil {
		b = &Bundle{Name: m[1], Location: s.ManifestLocation(m[1])}
		by[m[1]] = b
	}
	b.Keys = append(b.Keys, aws.ToString(o.Key))
	b.Manifest = b.Manifest || m[2] == "manifest.xml"
	if t := aws.ToTime(o.LastModified); t.After(b.Modified) {
		b.Modified = t
	}
}

func (s *Store) tags(ctx context.Context, key string) (map[string]string, error) {
	out, err := s.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.explain("tags of s3://"+s.bucket+"/"+key, err)
	}
	tags := map[string]string{}
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// Delete removes a bundle's objects, the manifest first, so that what is
// left of a failed delete is never registrable.
func (s *Store) Delete(ctx context.Context, b *Bundle) error {
	for _, k := range b.Keys {
		if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)}); err != nil {
			return s.explain("delete s3://"+s.bucket+"/"+k, err)
		}
	}
	return nil
}

// DeleteNamed removes the bundle called name, if it is in the store.
func (s *Store) DeleteNamed(ctx context.Context, name string) error {
	bs, err := s.Bundles(ctx)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Name == name {
			return s.Delete(ctx, b)
		}
	}
	return nil
}

// Uploading says whether an upload of the bundle runs on this host now.
func (s *Store) Uploading(b *Bundle) bool {
	return s.o.LockDir != "" && b.Host == s.host && flock.Held(s.lockPath(b.Name))
}

// Manifest reads a bundle's manifest from the bucket.
func (s *Store) Manifest(ctx context.Context, name string) ([]byte, error) {
	r, err := s.Opener()(ctx, name+".manifest.xml")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Opener reads a bundle's files from the bucket (for s3bundle.Unbundle).
func (s *Store) Opener() s3bundle.Opener {
	return func(ctx context.Context, file string) (io.ReadCloser, error) {
		out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(file))})
		if err != nil {
			return nil, s.explain(fmt.Sprintf("get s3://%s/%s", s.bucket, s.key(file)), err)
		}
		return out.Body, nil
	}
}
