package service

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// AttestDir is where the state directory keeps images' SBOMs and
// provenance (internal/image/attest).
func AttestDir(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "attest") }

// OpenAttest opens the state directory's attestation store, seen from the
// cloud named cloud in the configured region (attest.Store.In): what it
// Puts is recorded as in that cloud and region, and gc there considers
// only those (an image of another region is not found here, and is not
// gone). cloud "" sees every image and records none.
func OpenAttest(cfg *config.Config, cloud string) (*attest.Store, error) {
	if !filepath.IsAbs(cfg.StateDir) {
		return nil, fmt.Errorf("attestation store: the state directory %q is not an absolute path", cfg.StateDir)
	}
	s, err := attest.Open(AttestDir(cfg))
	if err != nil {
		return nil, err
	}
	if cloud == "" {
		return s, nil
	}
	return s.In(attestScope(cfg, cloud)), nil
}

// attestScope is where the store records an image to be: its cloud and,
// when one is configured, region.
func attestScope(cfg *config.Config, cloud string) string {
	if cfg.Context.Region == "" {
		return cloud
	}
	return cloud + "/" + cfg.Context.Region
}

// DocStore is what removing an image needs of the attestation store.
type DocStore interface {
	Delete(ctx context.Context, imageID string) error
}

// ErrNoSBOM is wrapped by SBOM's error for an image without one.
var ErrNoSBOM = errors.New("no SBOM stored")

// SBOM is an image's stored SBOM in format (attest.KindSPDX or
// attest.KindCycloneDX), its digest checked. An image without one (made
// before aminator wrote SBOMs, or imported) wraps ErrNoSBOM and
// attest.ErrNotFound.
func SBOM(ctx context.Context, s *attest.Store, imageID, format string) (attest.Doc, error) {
	if format != attest.KindSPDX && format != attest.KindCycloneDX {
		return attest.Doc{}, fmt.Errorf("SBOM format %q: spdx or cyclonedx", format)
	}
	d, err := s.Get(ctx, imageID, format)
	if errors.Is(err, attest.ErrNotFound) {
		return attest.Doc{}, noSBOM{imageID, format, err}
	}
	return d, err
}

type noSBOM struct {
	image, format string
	err           error
}

func (e noSBOM) Error() string {
	return fmt.Sprintf("image %s has no %s SBOM: it was made before aminator wrote SBOMs, or imported", e.image, e.format)
}

func (e noSBOM) Unwrap() []error { return []error{ErrNoSBOM, e.err} }

// PlanAttestGC plans removing the documents of the images s (seen In a
// cloud) holds that c no longer has. Executing re-checks each image
// first: one that is back (or whose lookup fails) keeps its documents.
func PlanAttestGC(ctx context.Context, s *attest.Store, c ImageGetter, cloud string) (gcreport.Plan, error) {
	ids, err := s.Images(ctx)
	if err != nil {
		return nil, err
	}
	p := &attestGC{s: s, c: c, planned: gcreport.New(cloud, true, gcreport.Attestation)}
	var errs []error
	for _, id := range ids {
		gone, err := imageGone(ctx, c, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if gone {
			p.planned.Remove(gcreport.Item{Kind: gcreport.Attestation, ID: id, Reason: "the image is gone"})
		}
	}
	return p, errors.Join(errs...)
}

func imageGone(ctx context.Context, c ImageGetter, id string) (bool, error) {
	_, err := c.Image(ctx, plugin.ImageQuery{ID: id})
	if errors.Is(err, plugin.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up image %s for its documents: %w", id, err)
	}
	return false, nil
}

type attestGC struct {
	s       *attest.Store
	c       ImageGetter
	planned *gcreport.Report
}

func (p *attestGC) Planned() *gcreport.Report { return p.planned }

func (p *attestGC) Execute(ctx context.Context) (*gcreport.Report, error) {
	r := gcreport.New(p.planned.Cloud, false, gcreport.Attestation)
	var errs []error
	for _, it := range p.planned.Removed {
		gone, err := imageGone(ctx, p.c, it.ID)
		switch {
		case err != nil:
			r.Skip(it, err.Error())
		case !gone:
			r.Skip(it, "the image exists again")
		default:
			if err := p.s.Delete(ctx, it.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			r.Remove(it)
		}
	}
	return r, errors.Join(errs...)
}
