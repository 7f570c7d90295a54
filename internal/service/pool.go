package service

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
)

// FillEC2Pool fills this host's EC2 pool of a snapshot (see
// ec2cloud.FillPool); with pool_attach the environment's blockdevice
// plugin picks the device names.
func FillEC2Pool(ctx context.Context, cfg *config.Config, c *ec2cloud.Cloud, f ec2cloud.PoolFill, log *slog.Logger) (int, error) {
	spec := cfg.Environments[cfg.Context.Environment]
	if name := spec[plugin.KindBlockDevice]; name != "" {
		reg, ok := plugin.Lookup(plugin.KindBlockDevice, name)
		if !ok {
			return 0, fmt.Errorf("no blockdevice plugin %q", name)
		}
		pc, err := cfg.PluginConfig(plugin.KindBlockDevice, name)
		if err != nil {
			return 0, err
		}
		d := deps(cfg, log)
		d.Cloud = c
		inst, err := reg.New(pc, d)
		if err != nil {
			return 0, fmt.Errorf("blockdevice plugin %s: %w", name, err)
		}
		if bd, ok := inst.(plugin.BlockDevice); ok {
			f.Devices = bd
		}
	}
	return c.FillPool(ctx, f)
}
