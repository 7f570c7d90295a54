package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/bake"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/mntns"
)

func (a *app) runBake(cmd *cobra.Command, args []string) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	if cfg.Context.VolumeID != "" || cfg.Context.BlockDevice != "" {
		return usagef("-V/--volume-id and --block-device (an external volume pool) are not supported by environment %q", cfg.Context.Environment)
	}
	if os.Geteuid() != 0 {
		return errors.New("baking needs root: it attaches loop devices, mounts filesystems and chroots")
	}
	// Bake in a private mount namespace unless the user wants the mounts
	// kept for debugging (they would vanish with the namespace).
	if !mntns.InChild() && !cfg.Context.PreserveOnError {
		code, err := mntns.Reexec()
		if err != nil {
			return err
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	}
	if mntns.InChild() {
		if err := mntns.SetupChild(); err != nil {
			return err
		}
	}
	ctx, stop := signalContext()
	defer stop()
	bakeID := bake.NewBakeID(time.Now())
	f, fh, err := logging.BakeFile(cfg.LogDir, bakeID)
	if err != nil {
		return err
	}
	defer f.Close()
	log := slog.New(slog.NewMultiHandler(logging.Console(a.stderr, cfg.Context.Debug), fh))
	log.Info("bake started", "bake", bakeID, "log", f.Name(), "environment", cfg.Context.Environment, "package", args[0])
	log.Debug("configuration", "sources", cfg.Sources, "context", fmt.Sprintf("%+v", cfg.Context))
	env, err := bake.NewEnvironment(cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()
	req := bake.RequestFromConfig(cfg.Context, args[0])
	req.BakeID = bakeID
	res, err := bake.Run(ctx, env, req, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("bake cancelled; cleaned up", "bake", bakeID)
		}
		for _, h := range res.Preserved {
			log.Warn("preserved for debugging; remove with", "command", h)
		}
		log.Debug("bake failed", "err", err)
		return fmt.Errorf("bake %s failed (log: %s): %w", bakeID, f.Name(), err)
	}
	log.Info("bake done", "image", res.Image.ID, "name", res.Image.Name, "took", res.Duration.Round(time.Millisecond))
	for _, k := range sortedKeys(res.Image.Tags) {
		log.Info("tag", "key", k, "value", res.Image.Tags[k])
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	fmt.Fprintln(a.stdout, res.Image.ID)
	return nil
}
