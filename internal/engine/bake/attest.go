package bake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Attester makes an image's SBOMs (SPDX and CycloneDX) and its signed
// provenance, and keeps them with the image (issue 21). An Environment
// with one attests every image its bakes and foundations make.
type Attester struct {
	Store  AttestStore
	Signer provenance.Signer
	// BuilderID is the URI provenance names as the builder.
	BuilderID string
	// Tool and Version name the program (aminator and its version).
	Tool, Version string
	// Publisher, when set, also keeps the documents beside the image in
	// its cloud, referenced from the image's tags (EC2: attest.s3_bucket).
	Publisher Publisher
}

// Publisher keeps an image's documents where its cloud keeps the image
// (EC2: an S3 bucket, or only their digests), once the Attester has kept
// them on this host, and says which tags on the image reference them.
type Publisher interface {
	// Publish stores the documents of image imageID and returns the tags
	// that reference them, each value at most MaxRefLen long.
	Publish(ctx context.Context, imageID string, d Documents) (plugin.Tags, error)
	// Unpublish removes what Publish stored (nothing stored: nil).
	Unpublish(ctx context.Context, imageID string) error
	// TagKeys are the keys of the tags Publish returns, counted against
	// the cloud's tag limits before a bake makes anything.
	TagKeys() []string
}

// MaxRefLen is the longest tag value a Publisher gives: EC2's limit.
const MaxRefLen = 256

// Documents are an image's attestations, as bytes.
type Documents struct{ SPDX, CycloneDX, Provenance []byte }

// AttestStore keeps images' documents by image id.
type AttestStore interface {
	// Keep stores an image's documents and the inventory they list,
	// replacing any it had.
	Keep(ctx context.Context, imageID string, inv *sbom.Inventory, docs Documents) error
	// Forget removes an image's documents; it is not an error when it has none.
	Forget(ctx context.Context, imageID string) error
	// Licences are the licences an image's SBOM gave its packages, by
	// purl (nil when it has none), so a bake reads only its new
	// packages' copyright files.
	Licences(ctx context.Context, imageID string) (map[string]string, error)
}

// Attestation is what one image's documents say.
type Attestation struct {
	ImageID    string
	DiskDigest string
	Inventory  *sbom.Inventory
	// Base and Package are nil for a foundation or an import.
	Base    *provenance.Image
	Package *provenance.Package
	// Import says the image is an imported disk, attested on request.
	Import bool
	// Configuration is the resolved settings, by configuration key.
	Configuration     map[string]any
	BakeID            string
	Started, Finished time.Time
}

// Media types of the documents.
const (
	MediaSPDX      = "application/spdx+json"
	MediaCycloneDX = "application/vnd.cyclonedx+json"
)

// Attest writes, signs and keeps one image's documents.
func (a *Attester) Attest(ctx context.Context, at Attestation) (Documents, error) {
	subject := sbom.Subject{Image: at.ImageID, DiskDigest: at.DiskDigest, Created: at.Finished, Tool: a.Tool, Version: a.Version}
	if at.Package != nil {
		subject.Package = at.Package.Name
	}
	var d Documents
	var err error
	if d.SPDX, err = sbom.SPDX(at.Inventory, subject); err != nil {
		return d, err
	}
	if d.CycloneDX, err = sbom.CycloneDX(at.Inventory, subject); err != nil {
		return d, err
	}
	st, err := provenance.Build(provenance.Inputs{
		Image: provenance.Image{ID: at.ImageID, DiskDigest: at.DiskDigest},
		SBOMs: []provenance.SBOM{
			{Name: at.ImageID + ".spdx.json", MediaType: MediaSPDX, SHA256: hexSHA256(d.SPDX)},
			{Name: at.ImageID + ".cdx.json", MediaType: MediaCycloneDX, SHA256: hexSHA256(d.CycloneDX)},
		},
		Base: at.Base, Package: at.Package, Import: at.Import, Configuration: at.Configuration,
		BuilderID: a.BuilderID, Tool: a.Tool, Version: a.Version,
		BakeID: at.BakeID, Started: at.Started, Finished: at.Finished,
	})
	if err != nil {
		return d, err
	}
	if d.Provenance, err = provenance.Sign(ctx, st, a.Signer); err != nil {
		return d, fmt.Errorf("sign the provenance of %s: %w", at.ImageID, err)
	}
	if err := a.Store.Keep(ctx, at.ImageID, at.Inventory, d); err != nil {
		return d, fmt.Errorf("keep the SBOMs and provenance of %s: %w", at.ImageID, err)
	}
	return d, nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
