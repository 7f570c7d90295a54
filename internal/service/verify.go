package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Verification is what aminate verify found: one verdict per image of the
// lineage, the image first.
type Verification struct {
	Image    string               `json:"image"`
	OK       bool                 `json:"ok"`
	Verdicts []provenance.Verdict `json:"lineage"`
}

// RemoteDocs fetches an image's documents from where its cloud keeps
// them beside it (EC2: S3, attest.s3_bucket), each checked against the
// SHA-256 the image's tags name.
type RemoteDocs interface {
	Fetch(ctx context.Context, im *plugin.Image, kind string) ([]byte, error)
}

// Remote is the cloud's RemoteDocs under cfg (nil: none, on a cloud that
// keeps documents on this host only).
func Remote(a config.Attest, c plugin.Cloud) RemoteDocs {
	if d := newEC2Docs(a, c); d != nil {
		return d
	}
	return nil
}

// VerifyImage checks image ref's provenance against trust: its signature,
// its disk (the digest recomputed by reading every byte of the image's
// snapshot), its SBOMs (their bytes hashed again), and then each
// ancestor's in turn (their disks' digests as the store keeps them). An
// image whose documents this host's store lacks has them fetched through
// remote (nil: none).
func VerifyImage(ctx context.Context, c plugin.Cloud, st *attest.Store, remote RemoteDocs, trust *provenance.Trust, ref string, now time.Time) (*Verification, error) {
	digests, err := plugin.Has[plugin.DiskDigests](c, "configured", "disk digests")
	if err != nil {
		return nil, err
	}
	im, err := Find(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	resolve := func(ctx context.Context, id string) (provenance.Record, error) {
		return record(ctx, c, digests, docSource{st, remote}, id, id == im.ID)
	}
	v := provenance.Lineage(ctx, im.ID, resolve, trust, now)
	return &Verification{Image: im.ID, OK: provenance.LineageOK(v), Verdicts: v}, nil
}

// record is what the verifier measures of one image: its envelope, its
// SBOMs' SHA-256 and its disk's digest (read again when read says so).
func record(ctx context.Context, c plugin.Cloud, d plugin.DiskDigests, docs docSource, id string, read bool) (provenance.Record, error) {
	var rec provenance.Record
	im, err := c.Image(ctx, plugin.ImageQuery{ID: id})
	if err != nil {
		return rec, err
	}
	env, err := docs.get(ctx, im, attest.KindProvenance)
	if errors.Is(err, attest.ErrNotFound) {
		return rec, fmt.Errorf("image %s has no provenance (made before images were attested, or imported): %w", id, err)
	}
	if err != nil {
		return rec, err
	}
	rec.Envelope = env
	for _, k := range []string{attest.KindSPDX, attest.KindCycloneDX} {
		doc, err := docs.get(ctx, im, k)
		if err != nil {
			return rec, err
		}
		sum := sha256.Sum256(doc)
		rec.SBOMSHA256 = append(rec.SBOMSHA256, hex.EncodeToString(sum[:]))
	}
	root := im.Root()
	if root == nil || root.SnapshotID == "" {
		return rec, fmt.Errorf("image %s has no root snapshot to digest", id)
	}
	if read {
		rec.DiskDigest, err = d.ReadDiskDigest(ctx, root.SnapshotID)
	} else {
		rec.DiskDigest, err = d.DiskDigest(ctx, root.SnapshotID)
	}
	if err != nil {
		return rec, fmt.Errorf("disk digest of image %s: %w", id, err)
	}
	return rec, nil
}

// VerifyIn verifies image id of region and environment ("" the
// configured one) against the trust file trustFile ("": the configured
// one), as VerifyImage does: what the bakery's workers do with every
// image a bake made.
func VerifyIn(ctx context.Context, cfg *config.Config, region, environment, trustFile, id string) (*Verification, error) {
	if trustFile == "" {
		trustFile = cfg.Attest.Trust(cfg.StateDir)
	}
	trust, err := provenance.LoadTrust(trustFile)
	if err != nil {
		return nil, err
	}
	c := *cfg
	c.Context.Region = region
	if environment != "" {
		c.Context.Environment = environment
	}
	name, err := CloudName(&c)
	if err != nil {
		return nil, err
	}
	st, err := OpenAttest(&c, name)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var v *Verification
	err = withCloudIn(cfg, region, environment, func(cl plugin.Cloud) error {
		v, err = VerifyImage(ctx, cl, st, Remote(cfg.Attest, cl), trust, id, time.Now())
		return err
	})
	return v, err
}

// docSource reads an image's documents from this host's store, else
// through remote.
type docSource struct {
	st     *attest.Store
	remote RemoteDocs
}

func (s docSource) get(ctx context.Context, im *plugin.Image, kind string) ([]byte, error) {
	doc, err := s.st.Get(ctx, im.ID, kind)
	if err == nil || !errors.Is(err, attest.ErrNotFound) || s.remote == nil {
		return doc.Body, err
	}
	b, rerr := s.remote.Fetch(ctx, im, kind)
	if errors.Is(rerr, attest.ErrNotFound) {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("%s of image %s (not in this host's store): %w", kind, im.ID, rerr)
	}
	return b, nil
}
