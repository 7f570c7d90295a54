package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// ec2Docs keeps an EC2 image's documents beside it (a bake.Publisher):
// with attest.s3_bucket in S3 under PREFIX/IMAGE-ID/, the image tagged
// sbom and provenance with references to them; without one the image is
// tagged with their SHA-256 only (the documents stay in this host's
// store). It also fetches them back for verify.
type ec2Docs struct {
	s3             *s3.Client // nil without a bucket
	bucket, prefix string
}

// newEC2Docs is the EC2 cloud's publisher (nil on another cloud).
func newEC2Docs(a config.Attest, c plugin.Cloud) *ec2Docs {
	ec, ok := c.(*ec2cloud.Cloud)
	if !ok {
		return nil
	}
	d := &ec2Docs{bucket: a.S3Bucket, prefix: a.Prefix()}
	if d.bucket != "" {
		cfg := ec.AWSConfig()
		d.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = cfg.BaseEndpoint != nil // a custom endpoint (moto) takes buckets in the path
			o.DisableLogOutputChecksumValidationSkipped = true
		})
	}
	return d
}

// docFiles are the objects' names, by kind, as the store names its files.
var docFiles = []struct{ kind, file, media string }{
	{attest.KindSPDX, "spdx.json", bake.MediaSPDX},
	{attest.KindCycloneDX, "cyclonedx.json", bake.MediaCycloneDX},
	{attest.KindProvenance, "provenance.dsse.json", MediaDSSE},
}

func (d *ec2Docs) key(imageID, file string) string { return d.prefix + imageID + "/" + file }

// TagKeys are sbom and provenance with a bucket, their _sha256 without.
func (d *ec2Docs) TagKeys() []string {
	if d.s3 == nil {
		return []string{owner.SBOMSHA256, owner.ProvenanceSHA256}
	}
	return []string{owner.SBOM, owner.Provenance}
}

// Publish uploads the documents (with a bucket) and returns the image's
// tags that reference them.
func (d *ec2Docs) Publish(ctx context.Context, imageID string, docs bake.Documents) (plugin.Tags, error) {
	body := map[string][]byte{attest.KindSPDX: docs.SPDX, attest.KindCycloneDX: docs.CycloneDX, attest.KindProvenance: docs.Provenance}
	if d.s3 == nil {
		return plugin.Tags{owner.SBOMSHA256: hexSum(docs.SPDX), owner.ProvenanceSHA256: hexSum(docs.Provenance)}, nil
	}
	for _, f := range docFiles {
		b := body[f.kind]
		if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(d.key(imageID, f.file)),
			Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(f.media)}); err != nil {
			return nil, fmt.Errorf("upload s3://%s/%s: %w", d.bucket, d.key(imageID, f.file), err)
		}
	}
	return plugin.Tags{owner.SBOM: d.ref(imageID, "spdx.json", docs.SPDX), owner.Provenance: d.ref(imageID, "provenance.dsse.json", docs.Provenance)}, nil
}

// ref is a document's reference: s3://BUCKET/KEY#sha256=HEX, or
// sha256:HEX when that is longer than a tag value may be.
func (d *ec2Docs) ref(imageID, file string, b []byte) string {
	r := "s3://" + d.bucket + "/" + d.key(imageID, file) + "#sha256=" + hexSum(b)
	if len(r) > bake.MaxRefLen {
		return "sha256:" + hexSum(b)
	}
	return r
}

// Unpublish deletes the image's objects (S3 deletes what is not there
// without complaint).
func (d *ec2Docs) Unpublish(ctx context.Context, imageID string) error {
	if d.s3 == nil {
		return nil
	}
	var errs []error
	for _, f := range docFiles {
		if _, err := d.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(d.bucket), Key: aws.String(d.key(imageID, f.file))}); err != nil {
			errs = append(errs, fmt.Errorf("delete s3://%s/%s: %w", d.bucket, d.key(imageID, f.file), err))
		}
	}
	return errors.Join(errs...)
}

// Fetch reads an image's document of a kind from S3: where its tag's
// reference names it (the SBOM tag names the SPDX document; the
// CycloneDX one is beside it), else under this configuration's bucket
// and prefix. A document a tag names a SHA-256 for must have it; the
// CycloneDX document's is the one its provenance names, which verify
// checks.
func (d *ec2Docs) Fetch(ctx context.Context, im *plugin.Image, kind string) ([]byte, error) {
	tag := owner.SBOM
	if kind == attest.KindProvenance {
		tag = owner.Provenance
	}
	ref, ok := im.Tags[tag]
	if !ok {
		return nil, fmt.Errorf("image %s has no %s tag: %w", im.ID, tag, attest.ErrNotFound)
	}
	bucket, key, sum, err := parseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: tag %s: %w", im.ID, tag, err)
	}
	if bucket == "" { // sha256:HEX alone: where this configuration puts them
		if d.s3 == nil {
			return nil, fmt.Errorf("image %s's %s tag names no S3 object, and attest.s3_bucket is not set: %w", im.ID, tag, attest.ErrNotFound)
		}
		bucket, key = d.bucket, d.key(im.ID, "spdx.json")
		if kind == attest.KindProvenance {
			key = d.key(im.ID, "provenance.dsse.json")
		}
	}
	if kind == attest.KindCycloneDX {
		key, sum = key[:strings.LastIndex(key, "/")+1]+"cyclonedx.json", ""
	}
	b, err := d.get(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	if sum != "" && hexSum(b) != sum {
		return nil, fmt.Errorf("s3://%s/%s has SHA-256 %s; image %s's %s tag says %s", bucket, key, hexSum(b), im.ID, tag, sum)
	}
	return b, nil
}

func (d *ec2Docs) get(ctx context.Context, bucket, key string) ([]byte, error) {
	if d.s3 == nil {
		return nil, fmt.Errorf("read s3://%s/%s: no S3 client (attest.s3_bucket is not set)", bucket, key)
	}
	out, err := d.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return b, nil
}

// parseRef splits s3://BUCKET/KEY#sha256=HEX (or sha256:HEX: no bucket).
func parseRef(ref string) (bucket, key, sum string, err error) {
	if h, ok := strings.CutPrefix(ref, "sha256:"); ok && len(h) == 64 {
		return "", "", h, nil
	}
	rest, ok := strings.CutPrefix(ref, "s3://")
	loc, h, ok2 := strings.Cut(rest, "#sha256=")
	bucket, key, ok3 := strings.Cut(loc, "/")
	if !ok || !ok2 || !ok3 || bucket == "" || key == "" || len(h) != 64 {
		return "", "", "", fmt.Errorf("%q is not s3://BUCKET/KEY#sha256=HEX or sha256:HEX", ref)
	}
	return bucket, key, h, nil
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
