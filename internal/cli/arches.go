package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/service"
)

// bakeArches bakes pkg for each architecture of --arch's list (see
// service.BakeArches) and prints every image: ARCH ID lines, or the whole
// result as JSON. Images kept by --keep-partial are printed too, and the
// bake still fails.
func (a *app) bakeArches(cfg *config.Config, pkg string, r bakeRun) error {
	o := service.ArchesOptions{Arches: cfg.Context.Arches(), KeepPartial: cfg.Context.KeepPartial, Bases: r.bases}
	if err := service.CheckArchRequest(bake.RequestFromConfig(cfg.Context, pkg), o); err != nil {
		return usageError{err} // before the job: nothing is started
	}
	return a.job(cfg, "bake", r.stdin, func(ctx context.Context, j *service.Job) error {
		env, err := j.OpenEnvironment(ctx)
		if err != nil {
			return err
		}
		defer env.Close()
		req := r.request(cfg, pkg)
		res, err := j.BakeArches(ctx, env, req, o)
		if err != nil && len(res.Images) == 0 {
			return err
		}
		if r.dry {
			return a.print(res, func() {
				for _, b := range res.Bakes {
					fmt.Fprintf(a.stdout, "%s: ", b.Arch)
					a.printPlanText(b.Result)
				}
			})
		}
		var testErr error
		for i, b := range res.Bakes { // every test before the tables: a table ends the live console
			if b.Image != nil && r.test {
				im, terr := j.TestImage(ctx, env, b.Image)
				res.Bakes[i].Image, testErr = im, errors.Join(testErr, terr)
			}
		}
		for _, b := range res.Bakes {
			if b.Image != nil {
				a.done(j.Log, "bake "+b.Arch, b.Image, b.Result.Duration)
			}
		}
		res.Images, res.Image = res.Images[:0], nil
		for _, b := range res.Bakes {
			if b.Image != nil {
				res.Images = append(res.Images, b.Image)
			}
		}
		res.Image = res.Images[0]
		if r.manifest != "" {
			if werr := writeJSON(r.manifest, res); werr != nil {
				return errors.Join(err, testErr, werr)
			}
		}
		if perr := a.print(res, func() {
			for _, im := range res.Images {
				fmt.Fprintf(a.stdout, "%s %s\n", im.Architecture, im.ID)
			}
		}); perr != nil {
			return errors.Join(err, perr)
		}
		return errors.Join(err, testErr)
	})
}
