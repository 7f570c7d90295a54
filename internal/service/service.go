// Package service is what the command line and the bakery do, as one Go
// API between them and the clouds: open the configured environment or a
// cloud (every cloud is built one way, through its plugin registration),
// resolve an image reference, remove an image with its snapshots, follow
// an image's lineage, diff two images' packages in their package format's
// version order, export an image, boot-test it and tag the outcome, and
// run a job (a bake, a foundation, a boot test) as root in private
// namespaces under a job lock with its own log file.
//
// The CLI parses flags, calls these functions and prints what they
// return; the bakery's workers hand a child process a typed request that
// calls the same functions. See docs/architecture.md.
package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/sys/mntns"
)

// SignalContext is cancelled by SIGINT, SIGTERM or SIGHUP: a command
// stopped that way cleans up as it would on an error.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// deps are what every plugin of cfg is built with.
func deps(cfg *config.Config, log *slog.Logger) plugin.Deps {
	return plugin.Deps{Logger: log, StateDir: cfg.StateDir, LockDir: cfg.LockDir, Region: cfg.Context.Region}
}

// PrepareStore readies the local cloud's store before the cloud is opened
// (local.PrepareDataFS, as store_fs says: mount the store filesystem made
// before, or set one up on a new state directory), when this process can:
// as root, in the host's mount namespace (a job's child finds it ready).
func PrepareStore(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if mntns.InChild() || os.Geteuid() != 0 {
		return nil
	}
	return local.PrepareDataFS(ctx, cfg.StateDir, cfg.StoreFS, log)
}

// PrepareEnvironmentStore is PrepareStore when the configured
// environment's cloud is the local one, with SIGINT, SIGTERM and SIGHUP
// cancelling it.
func PrepareEnvironmentStore(cfg *config.Config, log *slog.Logger) error {
	if name, err := CloudName(cfg); err != nil || name != "local" {
		return nil
	}
	ctx, stop := SignalContext()
	defer stop()
	return PrepareStore(ctx, cfg, log)
}

// CloudName is the cloud plugin of the configured environment.
func CloudName(cfg *config.Config) (string, error) {
	spec, ok := cfg.Environments[cfg.Context.Environment]
	if !ok {
		return "", fmt.Errorf("no environment %q", cfg.Context.Environment)
	}
	return spec[plugin.KindCloud], nil
}

// OpenEnvironment builds every plugin of the configured environment;
// the caller closes it.
func OpenEnvironment(ctx context.Context, cfg *config.Config, log *slog.Logger) (*bake.Environment, error) {
	return bake.NewEnvironment(cfg, log)
}

// OpenCloud builds the cloud plugin name with its configured settings,
// as an environment builds it, the local cloud's store readied first (see
// PrepareStore); the caller closes it with Close.
func OpenCloud(ctx context.Context, cfg *config.Config, name string, log *slog.Logger) (plugin.Cloud, error) {
	if _, err := cfg.PluginConfig(plugin.KindCloud, name); err != nil {
		return nil, err
	}
	if name == "local" {
		if err := PrepareStore(ctx, cfg, log); err != nil {
			return nil, err
		}
	}
	return newCloud(cfg, name, log)
}

// newCloud builds the cloud plugin name through its registration.
func newCloud(cfg *config.Config, name string, log *slog.Logger) (plugin.Cloud, error) {
	pc, err := cfg.PluginConfig(plugin.KindCloud, name)
	if err != nil {
		return nil, err
	}
	reg, _ := plugin.Lookup(plugin.KindCloud, name) // PluginConfig found it
	inst, err := reg.New(pc, deps(cfg, log))
	if err != nil {
		return nil, fmt.Errorf("cloud plugin %s: %w", name, err)
	}
	c, ok := inst.(plugin.Cloud)
	if !ok {
		Close(inst)
		return nil, fmt.Errorf("cloud plugin %s does not implement the cloud interface", name)
	}
	return c, nil
}

// OpenEnvironmentCloud builds the configured environment's cloud alone.
func OpenEnvironmentCloud(ctx context.Context, cfg *config.Config, log *slog.Logger) (plugin.Cloud, error) {
	name, err := CloudName(cfg)
	if err != nil {
		return nil, err
	}
	return OpenCloud(ctx, cfg, name, log)
}

// OpenLocal builds the local cloud, whatever the environment.
func OpenLocal(ctx context.Context, cfg *config.Config, log *slog.Logger) (*local.Cloud, error) {
	c, err := OpenCloud(ctx, cfg, "local", log)
	if err != nil {
		return nil, err
	}
	return c.(*local.Cloud), nil
}

// OpenEC2 builds the EC2 cloud in the configured region, whatever the
// environment.
func OpenEC2(ctx context.Context, cfg *config.Config, log *slog.Logger) (*ec2cloud.Cloud, error) {
	c, err := OpenCloud(ctx, cfg, "ec2", log)
	if err != nil {
		return nil, err
	}
	return c.(*ec2cloud.Cloud), nil
}

// Close releases what a plugin holds (an io.Closer: the local cloud's
// database and locks), if it holds anything.
func Close(p any) error {
	if c, ok := p.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
