package service

import (
	"context"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
)

// PooledIn says, for a region's cloud, how many ready pooled volumes
// each base image has (by image id): what a bakery worker advertises so
// that bakes of a base go first to a worker holding it. A cloud without
// a pool holds none.
func PooledIn(ctx context.Context, cfg *config.Config, region string) (map[string]int, error) {
	out := map[string]int{}
	err := withCloudIn(cfg, region, "", func(cl plugin.Cloud) error {
		lc, ok := cl.(*local.Cloud)
		if !ok {
			return nil
		}
		ps, err := lc.PoolStatus(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			for _, im := range p.Images {
				out[im] += p.Ready
			}
		}
		return nil
	})
	return out, err
}
