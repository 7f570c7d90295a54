package service

import (
	"context"
	"fmt"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/foundation"
)

// Bake bakes req as this job on env. A failed bake's error names the
// job's log, and what --preserve-on-error kept is logged with how to
// remove it. The result is never nil.
func (j *Job) Bake(ctx context.Context, env *bake.Environment, req bake.Request) (*bake.Result, error) {
	j.Log.Info("package", "package", req.Package)
	req.BakeID = j.ID
	res, err := bake.Run(ctx, env, req, j.Log)
	if err != nil {
		for _, h := range res.Preserved {
			j.Log.Warn("preserved for debugging; remove with", "command", h)
		}
		j.Log.Debug("bake failed", "err", err)
		return res, fmt.Errorf("bake %s failed: %w\n  log: %s", j.ID, err, j.LogPath)
	}
	return res, nil
}

// Foundation builds a foundation image as this job on env. A failed
// build's error names the job's log. The result is never nil.
func (j *Job) Foundation(ctx context.Context, env *bake.Environment, o foundation.Options) (*foundation.Result, error) {
	o.BakeID = j.ID
	res, err := foundation.Build(ctx, env, o, j.Log)
	if err != nil {
		return res, fmt.Errorf("foundation %s failed: %w\n  log: %s", j.ID, err, j.LogPath)
	}
	return res, nil
}
