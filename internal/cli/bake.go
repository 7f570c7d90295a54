package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/bake"
	"github.com/aminator-go/aminator/internal/boottest"
	"github.com/aminator-go/aminator/internal/cloud/local"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/console"
	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/foundation"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/mntns"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/progress"
)

// job is what a worker command does once it runs as root in its own
// namespaces with a log file.
type job func(ctx context.Context, log *slog.Logger, logPath, id string) error

// worker runs fn as root in private mount and PID namespaces (unless
// preserve: mounts kept for debugging must outlive the process), with
// Ctrl-C/SIGTERM cancelling ctx and a DEBUG log file named after id.
func (a *app) worker(cfg *config.Config, preserve bool, kind string, fn job) error {
	if os.Geteuid() != 0 {
		return errors.New(kind + " needs root: it attaches loop devices, mounts filesystems and chroots")
	}
	if !mntns.InChild() && cfg.Environments[cfg.Context.Environment][plugin.KindCloud] == "local" {
		// Outside the namespaces: mount (or set up) the store filesystem where the host sees it.
		if err := a.prepareStore(cfg); err != nil {
			return err
		}
	}
	if !mntns.InChild() && !preserve {
		refills, err := newRefillList(cfg.StateDir)
		if err != nil {
			return err
		}
		os.Setenv(refillEnv, refills.Path())
		code, err := mntns.Reexec()
		startRefills(cfg, refills)
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
	id := bake.NewBakeID(time.Now())
	if kind != "bake" {
		id = kind + strings.TrimPrefix(id, "bake")
	}
	// Held while the job runs: gc takes resources tagged with this id for
	// leftovers only when nobody holds it.
	jobLock, err := flock.TryExclusive(filepath.Join(cfg.LockDir, id+".lock"))
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(jobLock.Path())
		jobLock.Unlock()
	}()
	f, fh, err := logging.BakeFile(cfg.LogDir, id)
	if err != nil {
		return err
	}
	defer f.Close()
	// An interactive shell takes the terminal: nothing is redrawn under it.
	con, err := a.liveConsole(cfg.Context.Debug, !cfg.Context.Interactive)
	if err != nil {
		return err
	}
	// Closed before the error is printed: nothing is left drawn under it.
	defer con.Close()
	a.con = con
	a.stdout = afterConsole{a.stdout, con}
	log := slog.New(slog.NewMultiHandler(con.Handler(), fh))
	ctx = progress.With(ctx, progress.Multi(con.Progress(), progress.Log(log, 10*time.Second)))
	log.Info(kind+" started", "id", id, "log", f.Name(), "environment", cfg.Context.Environment)
	log.Debug("configuration", "sources", cfg.Sources, "context", fmt.Sprintf("%+v", cfg.Context))
	err = fn(ctx, log, f.Name(), id)
	if err != nil && ctx.Err() != nil {
		log.Warn(kind+" cancelled; cleaned up", "id", id)
	}
	return err
}

func (a *app) runBake(cmd *cobra.Command, args []string) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	test, _ := cmd.Flags().GetBool("test")
	dry, _ := cmd.Flags().GetBool("dry-run")
	manifest, _ := cmd.Flags().GetString("manifest")
	if dry && (test || cfg.Context.Interactive) {
		return usagef("--dry-run makes no image to test or open a shell in")
	}
	return a.worker(cfg, cfg.Context.PreserveOnError, "bake", func(ctx context.Context, log *slog.Logger, logPath, id string) error {
		env, err := bake.NewEnvironment(cfg, log)
		if err != nil {
			return err
		}
		defer env.Close()
		setPoolHook(env.Cloud)
		log.Info("package", "package", args[0])
		req := bake.RequestFromConfig(cfg.Context, args[0])
		req.BakeID, req.DryRun = id, dry
		res, err := bake.Run(ctx, env, req, log)
		if err != nil {
			for _, h := range res.Preserved {
				log.Warn("preserved for debugging; remove with", "command", h)
			}
			log.Debug("bake failed", "err", err)
			return fmt.Errorf("bake %s failed: %w\n  log: %s", id, err, logPath)
		}
		if dry {
			if a.output == "json" {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "would bake %s (%s) onto %s (%s): a %d-byte volume", res.Plan.Package.Raw, res.Plan.Package.Kind, res.Base.ID, res.Base.Name, res.Plan.VolumeBytes)
			if res.Plan.Name != "" {
				fmt.Fprintf(a.stdout, ", image %s (the name is free)", res.Plan.Name)
			} else {
				fmt.Fprint(a.stdout, "; the image name depends on the version the image's repositories offer: the bake checks it as soon as it knows it (apt: before installing; yum: right after)")
			}
			fmt.Fprintln(a.stdout)
			return nil
		}
		var testErr error
		if test {
			_, testErr = a.bootTest(ctx, env, cfg, res.Image, boottest.Options{}, logPath, log)
		}
		a.done(ctx, env, log, "bake", res.Image, res.Duration, test)
		if manifest != "" {
			if err := writeJSON(manifest, res); err != nil {
				return errors.Join(testErr, err)
			}
		}
		if a.output == "json" {
			if err := a.printJSON(res); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(a.stdout, res.Image.ID)
		}
		return testErr
	})
}

// afterConsole is standard output that first ends the live console: on a
// terminal, a line printed while bars are drawn would be erased by the
// next redraw.
type afterConsole struct {
	w io.Writer
	c *console.Console
}

func (o afterConsole) Write(p []byte) (int, error) {
	o.c.Close()
	return o.w.Write(p)
}

// done says what was made: on a terminal a short table of the image's id,
// name and tags under a `==>` line, elsewhere key=value lines. After a
// boot test the image is read again for its boot_test tags.
func (a *app) done(ctx context.Context, env *bake.Environment, log *slog.Logger, kind string, im *plugin.Image, took time.Duration, tested bool) {
	if tested {
		if again, err := env.Cloud.Image(ctx, plugin.ImageQuery{ID: im.ID}); err == nil {
			im = again
		}
	}
	if !a.con.Pretty() {
		log.Info(kind+" done", "image", im.ID, "name", im.Name, "took", took.Round(time.Millisecond))
		for _, k := range sortedKeys(im.Tags) {
			log.Info("tag", "key", k, "value", im.Tags[k])
		}
		return
	}
	log.Debug(kind+" done", "image", im.ID, "name", im.Name, "took", took.Round(time.Millisecond))
	rows := []console.Row{{Key: "image", Value: im.ID}, {Key: "name", Value: im.Name}}
	var tags strings.Builder
	tw := tabwriter.NewWriter(&tags, 0, 0, 2, ' ', 0)
	for _, k := range sortedKeys(im.Tags) {
		fmt.Fprintf(tw, "%s\t%s\n", k, im.Tags[k])
	}
	tw.Flush()
	for i, l := range strings.Split(strings.TrimSuffix(tags.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		key := ""
		if i == 0 {
			key = "tags"
		}
		rows = append(rows, console.Row{Key: key, Value: l})
	}
	// Nothing is drawn after the table: it is printed at once, before the
	// id goes to standard output (often the same terminal).
	a.con.Close()
	a.con.Table(kind+" done in "+console.Duration(took), rows)
}

// bootTest boots an image of the local cloud and records the outcome in
// its boot_test tag.
func (a *app) bootTest(ctx context.Context, env *bake.Environment, cfg *config.Config, im *plugin.Image, o boottest.Options, logPath string, log *slog.Logger) (*boottest.Result, error) {
	lc, ok := env.Cloud.(*local.Cloud)
	if !ok {
		return nil, fmt.Errorf("the boot test needs the local cloud, not environment %q", env.Name)
	}
	o.ConsoleLog = strings.TrimSuffix(logPath, ".log") + ".console.log"
	o.WorkDir = filepath.Join(cfg.StateDir, "tmp")
	o.CacheDir = filepath.Join(cfg.StateDir, "cache")
	o.Accel = cfg.Context.Accel
	o.Watchdog = time.Duration(cfg.Context.KVMWatchdog) * time.Second
	var res *boottest.Result
	_, err := pipeline.Step(ctx, log, "boot test", func(ctx context.Context) (err error) {
		res, err = boottest.Run(ctx, lc.Store(), im, o, log)
		return err
	})
	var be *boottest.Error
	if err != nil && !errors.As(err, &be) {
		return res, fmt.Errorf("boot test of %s: %w", im.ID, err)
	}
	state := "passed"
	if be != nil {
		state = "failed"
	}
	if terr := env.Cloud.CreateTags(context.WithoutCancel(ctx), im.ID, plugin.Tags{"boot_test": state, "boot_test_time": naming.CreationTime(time.Now())}); terr != nil {
		return res, errors.Join(err, terr)
	}
	if be != nil {
		return res, fmt.Errorf("image %s: %w", im.ID, err)
	}
	log.Info("boot test passed", "image", im.ID, "accel", res.Accel, "took", res.Duration.Round(time.Millisecond), "console", res.ConsoleLog)
	return res, nil
}

func (a *app) testCommand() *cobra.Command {
	var o boottest.Options
	cmd := &cobra.Command{
		Use:   "test IMAGE",
		Short: "Boot an image under qemu and check it reaches multi-user.target (the stored image is not modified)",
		Args:  a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.worker(cfg, false, "test", func(ctx context.Context, log *slog.Logger, logPath, id string) error {
				env, err := bake.NewEnvironment(cfg, log)
				if err != nil {
					return err
				}
				defer env.Close()
				im, err := findImage(ctx, env.Cloud, args[0])
				if err != nil {
					return err
				}
				res, err := a.bootTest(ctx, env, cfg, im, o, logPath, log)
				if a.output == "json" && res != nil {
					a.printJSON(res)
				} else if err == nil {
					fmt.Fprintf(a.stdout, "%s boots (%s, %s)\n", im.ID, res.Accel, res.Duration.Round(time.Second))
				}
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for the system to come up")
	cmd.Flags().IntVar(&o.MemoryMiB, "memory", 1024, "VM memory in MiB")
	accelFlags(cmd.Flags())
	return cmd
}

func (a *app) foundationCommand() *cobra.Command {
	var o foundation.Options
	var noKernel, test bool
	cmd := &cobra.Command{
		Use:   "foundation",
		Short: "Build a foundation image: a minimal Debian installed with mmdebstrap onto an empty volume",
		Long: `Build a foundation image: a minimal Debian (bookworm by default) installed
with mmdebstrap from the mirror the host's apt configuration names, with a
kernel, systemd and a small initramfs unless --no-kernel, an fstab by UUID,
a fresh hostname and an empty machine-id. The image is registered with the
role foundation, its family (-n, default debian-RELEASE), release and package
manifest; bake a meta package onto it to make a base image.`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			o.Name, o.Suffix, o.Creator = cfg.Context.Name, cfg.Context.Suffix, cfg.Context.Creator
			if cfg.Context.Arch != "" {
				o.Arch = cfg.Context.Arch
			}
			o.Kernel = !noKernel
			o.Tags = map[string]string{}
			for k, v := range cfg.Context.Tags {
				o.Tags[k] = v
			}
			return a.worker(cfg, false, "foundation", func(ctx context.Context, log *slog.Logger, logPath, id string) error {
				env, err := bake.NewEnvironment(cfg, log)
				if err != nil {
					return err
				}
				defer env.Close()
				o.BakeID = id
				res, err := foundation.Build(ctx, env, o, log)
				if !a.con.Pretty() { // on a terminal the stage lines said it
					for _, t := range res.Timings {
						log.Info("timing", "stage", t.Stage, "took", t.Duration.Round(time.Millisecond))
					}
				}
				if err != nil {
					return fmt.Errorf("foundation %s failed: %w\n  log: %s", id, err, logPath)
				}
				log.Debug("foundation", "kernel", res.Kernel, "packages", res.Packages)
				var testErr error
				if test {
					_, testErr = a.bootTest(ctx, env, cfg, res.Image, boottest.Options{}, logPath, log)
				}
				a.done(ctx, env, log, "foundation", res.Image, res.Duration, test)
				if a.output == "json" {
					a.printJSON(res)
				} else {
					fmt.Fprintln(a.stdout, res.Image.ID)
				}
				return testErr
			})
		},
	}
	f := cmd.Flags()
	f.StringP("name", "n", "", "family name (default debian-RELEASE); the image is named NAME-SUFFIX")
	f.StringP("suffix", "s", "", "name suffix (default: UTC time as yyyymmddHHMM)")
	f.StringP("creator", "c", "", "creator tag")
	f.String("arch", "", "architecture: x86_64 (default), arm64 or i386")
	markConfig(f)
	f.StringVar(&o.Release, "release", "bookworm", "Debian release (bookworm, trixie, ...)")
	f.StringVar(&o.Mirror, "mirror", "", "Debian mirror (default: the host's apt configuration)")
	f.IntVar(&o.SizeGiB, "size", 2, "volume size in GiB")
	f.StringVar(&o.Layout, "layout", "whole", "whole: filesystem on the whole device (direct kernel boot, as EBS roots); gpt: root on GPT partition 1")
	f.StringVar(&o.FS, "fs", "ext4", "root filesystem: ext4 or xfs")
	f.BoolVar(&noKernel, "no-kernel", false, "no kernel, systemd or initramfs (a chroot-only image)")
	f.StringSliceVar(&o.Include, "include", nil, "more packages to install (comma-separated)")
	f.StringVar(&o.ScratchDir, "scratch-dir", "", "where to build the tree (default /dev/shm when it has room)")
	f.BoolVar(&test, "test", false, "boot-test the image after registering it")
	accelFlags(f)
	f.StringArrayVar(&a.tags, "tag", nil, "extra tag KEY=VALUE (repeatable; not one aminator sets; the cloud's limits apply)")
	return cmd
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}
