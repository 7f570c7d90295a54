package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/config"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/service"
)

// onEC2 runs fn on the EC2 cloud when the configured environment's cloud
// is ec2 (the pool commands then work on this host's EC2 pool); ok is
// false, and nothing is done, for any other cloud.
func (a *app) onEC2(cmd *cobra.Command, fn func(ctx context.Context, cfg *config.Config, c *ec2cloud.Cloud) error) (ok bool, err error) {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return true, err
	}
	if name, err := service.CloudName(cfg); err != nil || name != "ec2" {
		return false, nil
	}
	ctx, stop := service.SignalContext()
	defer stop()
	c, err := service.OpenEC2(ctx, cfg, a.logger(cfg.Context.Debug))
	if err != nil {
		return true, err
	}
	return true, fn(ctx, cfg, c)
}

func (a *app) poolStatusEC2(ctx context.Context, c *ec2cloud.Cloud) error {
	ps, err := c.PoolStatus(ctx)
	if err != nil {
		return err
	}
	return printList(a, ps, "SNAPSHOT\tBASE\tTARGET\tREADY\tATTACHED\tCREATING", func(p ec2cloud.PoolStatus) []string {
		return []string{p.SnapshotID, p.Base, fmt.Sprint(p.Target), fmt.Sprint(p.Ready), fmt.Sprint(p.Attached), fmt.Sprint(p.Creating)}
	})
}

// poolFillEC2 fills the pool of image (or, for a refill, of snap).
func (a *app) poolFillEC2(ctx context.Context, cfg *config.Config, c *ec2cloud.Cloud, image, snap string, target int) error {
	f := ec2cloud.PoolFill{Snapshot: snap, Target: target}
	if image != "" {
		im, err := service.Find(ctx, c, image)
		if err != nil {
			return err
		}
		if f.Snapshot, err = service.RootSnapshot(im); err != nil {
			return err
		}
		f.Base = im.ID
	}
	made, err := service.FillEC2Pool(ctx, cfg, c, f, a.logger(cfg.Context.Debug))
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(map[string]any{"snapshot": f.Snapshot, "made": made})
	}
	fmt.Fprintf(a.stdout, "%s: made %d volumes\n", f.Snapshot, made)
	return nil
}

func (a *app) poolDrainEC2(ctx context.Context, c *ec2cloud.Cloud, image string) error {
	snap := ""
	if image != "" {
		im, err := service.Find(ctx, c, image)
		if err != nil {
			return err
		}
		if snap, err = service.RootSnapshot(im); err != nil {
			return err
		}
	}
	n, err := c.DrainPool(ctx, snap)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "deleted %d ready volumes\n", n)
	return nil
}
