package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
)

// PoolOf is the pool of cloud c (named name), or an error saying that
// cloud keeps none.
func PoolOf(c plugin.Cloud, name string) (plugin.Pool, error) {
	return plugin.Has[plugin.Pool](c, name, "volume pool")
}

// poolSnapshot is the snapshot of the pool a command names: the root
// snapshot of image (by id, name or FAMILY:LABEL), with the image's id, or
// snap itself (a refill) when image is "".
func poolSnapshot(ctx context.Context, c plugin.Cloud, image, snap string) (string, string, error) {
	if image == "" {
		return snap, "", nil
	}
	im, err := Find(ctx, c, image)
	if err != nil {
		return "", "", err
	}
	s, err := RootSnapshot(im)
	return s, im.ID, err
}

// FillPool fills the pool of image's root snapshot (or, for a refill with
// image "", of snap) on cloud c, named name, to target ready volumes (< 0:
// the current target) and returns the snapshot and how many volumes it
// made. A pool kept attached (EC2's pool_attach) gets its device names
// from the environment's blockdevice plugin.
func FillPool(ctx context.Context, cfg *config.Config, c plugin.Cloud, name, image, snap string, target int, log *slog.Logger) (string, int, error) {
	p, err := PoolOf(c, name)
	if err != nil {
		return "", 0, err
	}
	f := plugin.PoolFill{Target: target, Devices: &envDevices{cfg: cfg, cloud: c, log: log}}
	if f.Snapshot, f.Base, err = poolSnapshot(ctx, c, image, snap); err != nil {
		return "", 0, err
	}
	made, err := p.FillPool(ctx, f)
	return f.Snapshot, made, err
}

// DrainPool drains the pool of image's root snapshot (image "": every
// pool) on cloud c, named name, and returns how many volumes it deleted.
func DrainPool(ctx context.Context, c plugin.Cloud, name, image string) (int, error) {
	p, err := PoolOf(c, name)
	if err != nil {
		return 0, err
	}
	snap, _, err := poolSnapshot(ctx, c, image, "")
	if err != nil {
		return 0, err
	}
	return p.DrainPool(ctx, snap)
}

// envDevices allocates device names through the configured environment's
// blockdevice plugin, built on the first Allocate: a pool that keeps no
// volume attached never builds it.
type envDevices struct {
	cfg   *config.Config
	cloud plugin.Cloud
	log   *slog.Logger
	once  sync.Once
	bd    plugin.BlockDevice
	err   error
}

func (d *envDevices) Allocate(ctx context.Context, name string) (plugin.Slot, error) {
	d.once.Do(func() { d.bd, d.err = d.build() })
	if d.err != nil {
		return plugin.Slot{}, d.err
	}
	if d.bd == nil {
		return plugin.Slot{}, fmt.Errorf("environment %q has no blockdevice plugin to pick a device name", d.cfg.Context.Environment)
	}
	return d.bd.Allocate(ctx, name)
}

func (d *envDevices) build() (plugin.BlockDevice, error) {
	name := d.cfg.Environments[d.cfg.Context.Environment][plugin.KindBlockDevice]
	if name == "" {
		return nil, nil
	}
	reg, ok := plugin.Lookup(plugin.KindBlockDevice, name)
	if !ok {
		return nil, fmt.Errorf("no blockdevice plugin %q", name)
	}
	pc, err := d.cfg.PluginConfig(plugin.KindBlockDevice, name)
	if err != nil {
		return nil, err
	}
	deps := deps(d.cfg, d.log)
	deps.Cloud = d.cloud
	inst, err := reg.New(pc, deps)
	if err != nil {
		return nil, fmt.Errorf("blockdevice plugin %s: %w", name, err)
	}
	bd, _ := inst.(plugin.BlockDevice)
	return bd, nil
}
