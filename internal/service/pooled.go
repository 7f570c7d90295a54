package service

import (
	"context"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
)

// PooledIn says, for a region's cloud, how many ready pooled volumes
// each base image has (by image id): what a bakery worker advertises so
// that bakes of a base go first to a worker holding it. A cloud without
// a pool (plugin.Pool) holds none.
func PooledIn(ctx context.Context, cfg *config.Config, region string) (map[string]int, error) {
	out := map[string]int{}
	err := withCloudIn(cfg, region, "", func(cl plugin.Cloud) error {
		p, ok := cl.(plugin.Pool)
		if !ok {
			return nil
		}
		ps, err := p.PoolStatus(ctx)
		if err != nil {
			return err
		}
		for _, s := range ps {
			for _, im := range s.Images {
				out[im] += s.Ready
			}
		}
		return nil
	})
	return out, err
}
