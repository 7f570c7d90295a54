// Package service is what the command line and the bakery do, as one Go
// API between them and the clouds: open the configured environment or a
// cloud (every cloud is built one way, through its plugin registration),
// resolve an image reference, remove an image with its snapshots, follow
// an image's lineage, diff two images' packages in their package format's
// version order, export an image, boot-test it and tag the outcome, and
// run a job (a bake, a foundation, a boot test) as root in private
// namespaces under a job lock with its own log file.
//
// What a command does beyond a bake goes through the optional
// capabilities of the cloud it works on (plugin.Pool, plugin.Lister,
// plugin.DiskFiles, ...), found on whatever cloud OpenCloud opened; only
// the functions in push.go, which span two clouds (a local image sent to
// EC2), name a concrete cloud, and say so in their names.
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
	"strings"
	"syscall"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
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

// PrepareStore readies the store of cloud plugin name before it opens
// (its registration's plugin.StoreSetup, as store_fs says: the local
// cloud mounts the store filesystem made before, or sets one up on a new
// state directory), when this process can: as root, in the host's mount
// namespace (a job's child finds it ready). A cloud without a store on
// this host has nothing to ready.
func PrepareStore(ctx context.Context, cfg *config.Config, name string, log *slog.Logger) error {
	reg, ok := plugin.Lookup(plugin.KindCloud, name)
	if !ok || reg.Store == nil || mntns.InChild() || os.Geteuid() != 0 {
		return nil
	}
	return reg.Store.PrepareStore(ctx, cfg.StateDir, cfg.StoreFS, log)
}

// StoreSetup is the store setup of cloud plugin name, or an error saying
// it keeps no store on this host.
func StoreSetup(name string) (plugin.StoreSetup, error) {
	reg, ok := plugin.Lookup(plugin.KindCloud, name)
	if !ok {
		return nil, fmt.Errorf("no cloud plugin %q", name)
	}
	if reg.Store == nil {
		return nil, fmt.Errorf("the %s cloud has no store on this host to set up: %w", name, plugin.ErrNoCapability)
	}
	return reg.Store, nil
}

// PrepareEnvironmentStore is PrepareStore of the configured environment's
// cloud, with SIGINT, SIGTERM and SIGHUP cancelling it.
func PrepareEnvironmentStore(cfg *config.Config, log *slog.Logger) error {
	name, err := CloudName(cfg)
	if err != nil {
		return nil
	}
	ctx, stop := SignalContext()
	defer stop()
	return PrepareStore(ctx, cfg, name, log)
}

// CloudName is the cloud plugin of the configured environment.
func CloudName(cfg *config.Config) (string, error) {
	spec, ok := cfg.Environments[cfg.Context.Environment]
	if !ok {
		return "", fmt.Errorf("no environment %q", cfg.Context.Environment)
	}
	return spec[plugin.KindCloud], nil
}

// ChooseCloud is the one rule for which cloud a command works on: the
// cloud override names (--cloud), else the configured environment's.
func ChooseCloud(cfg *config.Config, override string) (string, error) {
	if override == "" {
		return CloudName(cfg)
	}
	if _, ok := plugin.Lookup(plugin.KindCloud, override); !ok {
		return "", fmt.Errorf("--cloud %q: no such cloud (%s)", override, strings.Join(plugin.Names(plugin.KindCloud), ", "))
	}
	return override, nil
}

// OpenEnvironment builds every plugin of the configured environment;
// the caller closes it.
// Every image it makes is attested (SBOMs and signed provenance, kept in
// STATE/attest); a signing key that cannot be read fails here, before any
// work.
func OpenEnvironment(ctx context.Context, cfg *config.Config, log *slog.Logger) (*bake.Environment, error) {
	env, err := bake.NewEnvironment(cfg, log)
	if err != nil {
		return nil, err
	}
	cloudName, err := CloudName(cfg)
	if err != nil {
		env.Close()
		return nil, err
	}
	a, st, err := NewAttester(ctx, cfg, cloudName, env.Cloud, Version, log)
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("attest: %w", err)
	}
	env.Attest = a
	env.OnClose(st.Close)
	return env, nil
}

// Version is the program's version, as provenance names it (set by the
// command line; see ToolVersion).
var Version = "dev"

// OpenCloud builds the cloud plugin name with its configured settings,
// as an environment builds it, its store readied first (see
// PrepareStore): the one way a command or the bakery opens a cloud. The
// caller closes it with Close.
func OpenCloud(ctx context.Context, cfg *config.Config, name string, log *slog.Logger) (plugin.Cloud, error) {
	if _, err := cfg.PluginConfig(plugin.KindCloud, name); err != nil {
		return nil, err
	}
	if err := PrepareStore(ctx, cfg, name, log); err != nil {
		return nil, err
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

// Close releases what a plugin holds (an io.Closer: the local cloud's
// database and locks), if it holds anything.
func Close(p any) error {
	if c, ok := p.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
