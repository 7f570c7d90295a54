package bundlestore

import (
	"context"
	"errors"
	"time"

	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// GCGrace is how old a bundle with no manifest written by another host
// must be before gc takes it for abandoned (this host's uploads are known
// by their flocks).
const GCGrace = 6 * time.Hour

// PlanGC lists the bundles gc would remove: those whose manifest no image
// uses (used says, by manifest location), that no upload on this host is
// writing, and, when another host wrote them, older than GCGrace.
func (s *Store) PlanGC(ctx context.Context, used func(location string) bool) ([]*Bundle, error) {
	bs, err := s.Bundles(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Bundle
	for _, b := range bs {
		switch {
		case used(b.Location), s.Uploading(b):
		case b.Host != s.host && time.Since(b.Modified) < GCGrace:
		default:
			out = append(out, b)
		}
	}
	return out, nil
}

// GC removes the bundles PlanGC lists and returns them.
func (s *Store) GC(ctx context.Context, used func(location string) bool) ([]*Bundle, error) {
	plan, err := s.PlanGC(ctx, used)
	if err != nil {
		return nil, err
	}
	var done []*Bundle
	var errs []error
	for _, b := range plan {
		if err := s.Delete(ctx, b); err != nil {
			errs = append(errs, err)
			continue
		}
		s.o.Log.Info("bundle removed", "manifest", b.Location, "objects", len(b.Keys))
		done = append(done, b)
	}
	return done, errors.Join(errs...)
}

// GCPlan is a bucket's gc plan (a gcreport.Plan).
type GCPlan struct {
	s     *Store
	used  func(ctx context.Context) (func(string) bool, error)
	Items []*Bundle
}

// Plan plans gc with used, which lists the manifest locations images use
// (it is asked again before anything is removed).
func (s *Store) Plan(ctx context.Context, used func(ctx context.Context) (func(string) bool, error)) (*GCPlan, error) {
	u, err := used(ctx)
	if err != nil {
		return nil, err
	}
	items, err := s.PlanGC(ctx, u)
	if err != nil {
		return nil, err
	}
	return &GCPlan{s: s, used: used, Items: items}, nil
}

func (b *Bundle) item() gcreport.Item {
	reason := "no image uses it"
	if !b.Manifest {
		reason = "an upload that did not finish (no manifest)"
	}
	return gcreport.Item{Kind: gcreport.Bundle, ID: b.Location, Reason: reason}
}

// Planned reports the plan as a dry run.
func (p *GCPlan) Planned() *gcreport.Report {
	r := gcreport.New("s3", true, gcreport.Bundle)
	for _, b := range p.Items {
		r.Remove(b.item())
	}
	return r
}

// Execute removes the planned bundles, each skipped if an image now uses
// it or an upload on this host now writes it.
func (p *GCPlan) Execute(ctx context.Context) (*gcreport.Report, error) {
	r := gcreport.New("s3", false, gcreport.Bundle)
	used, err := p.used(ctx)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, b := range p.Items {
		switch {
		case used(b.Location):
			r.Skip(b.item(), "an image uses it now")
		case p.s.Uploading(b):
			r.Skip(b.item(), "an upload on this host writes it now")
		default:
			if err := p.s.Delete(ctx, b); err != nil {
				errs = append(errs, err)
				continue
			}
			r.Remove(b.item())
		}
	}
	return r, errors.Join(errs...)
}
