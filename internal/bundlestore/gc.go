package bundlestore

import (
	"context"
	"errors"
	"time"
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
