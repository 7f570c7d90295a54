package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/service"
)

// target is the cloud a command works on: the one rule is --cloud, else
// the configured environment's cloud (service.ChooseCloud).
type target struct {
	cfg   *config.Config
	name  string
	cloud plugin.Cloud
}

// capability returns t's cloud as capability T, or an error naming the
// cloud and what it lacks: a command never falls back to another cloud.
func capability[T any](t *target, what string) (T, error) {
	return plugin.Has[T](t.cloud, t.name, what)
}

// withCloud loads the configuration and runs fn on the cloud the command
// uses (--cloud, else the configured environment's), and closes it.
func (a *app) withCloud(cmd *cobra.Command, fn func(ctx context.Context, t *target) error) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	name, err := service.ChooseCloud(cfg, a.cloud)
	if err != nil {
		return usageError{err}
	}
	ctx, stop := service.SignalContext()
	defer stop()
	c, err := service.OpenCloud(ctx, cfg, name, a.logger(cfg.Context.Debug))
	if err != nil {
		return err
	}
	defer service.Close(c)
	return fn(ctx, &target{cfg: cfg, name: name, cloud: c})
}

// print prints v as JSON with --output json, else as text says: each
// command states its text form once, here.
func (a *app) print(v any, text func()) error {
	if a.output == "json" {
		return a.printJSON(v)
	}
	text()
	return nil
}

// printList prints items as a JSON list (empty, not null, when there are
// none) or as a table with one row per item.
func printList[T any](a *app, items []T, header string, row func(T) []string) error {
	if items == nil {
		items = []T{}
	}
	return a.print(items, func() {
		rows := make([][]string, 0, len(items))
		for _, it := range items {
			rows = append(rows, row(it))
		}
		a.table(header, rows)
	})
}

func (a *app) table(header string, rows [][]string) {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
}

func age(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

func (a *app) snapshotsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshots", Short: "List and remove snapshots (in the environment's cloud, or --cloud's)"}
	list := &cobra.Command{
		Use: "list", Short: "List snapshots, newest first", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				l, err := capability[plugin.Lister](t, "snapshot listing")
				if err != nil {
					return err
				}
				ss, err := l.ListSnapshots(ctx)
				if err != nil {
					return err
				}
				return printList(a, ss, "ID\tSTATE\tBYTES\tVOLUME\tPARENT\tCREATED", func(s *plugin.Snapshot) []string {
					return []string{s.ID, s.State, fmt.Sprint(s.SizeBytes), s.VolumeID, s.ParentID, age(s.CreatedAt)}
				})
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm SNAPSHOT...", Short: "Delete snapshots no image uses", Args: a.args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				var errs []error
				for _, id := range args {
					if err := t.cloud.DeleteSnapshot(ctx, id); err != nil {
						errs = append(errs, err)
					} else {
						fmt.Fprintln(a.stdout, "deleted", id)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.AddCommand(list, rm)
	return cmd
}

func (a *app) volumesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "volumes", Short: "List and remove volumes (in the environment's cloud, or --cloud's)"}
	list := &cobra.Command{
		Use: "list", Short: "List volumes; ORPHANED marks those whose bake is gone", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				l, err := capability[plugin.Lister](t, "volume listing")
				if err != nil {
					return err
				}
				vs, err := l.ListVolumes(ctx)
				if err != nil {
					return err
				}
				return printList(a, vs, "ID\tSTATE\tSNAPSHOT\tBYTES\tDEVICE\tBAKE\t", func(v *plugin.Volume) []string {
					o := ""
					if v.Orphaned {
						o = "ORPHANED"
					}
					return []string{v.ID, v.State, v.SnapshotID, fmt.Sprint(v.SizeBytes), v.Device, v.Tags[owner.Bake], o}
				})
			})
		},
	}
	var orphaned bool
	rm := &cobra.Command{
		Use: "rm [VOLUME...]", Short: "Delete volumes (--orphaned: every volume whose bake is gone)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !orphaned {
				return usagef("name volumes to remove, or give --orphaned")
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				ids := args
				if orphaned {
					l, err := capability[plugin.Lister](t, "volume listing (--orphaned)")
					if err != nil {
						return err
					}
					more, err := service.OrphanedVolumes(ctx, l)
					if err != nil {
						return err
					}
					ids = append(ids[:len(ids):len(ids)], more...)
				}
				done, err := service.RemoveVolumes(ctx, t.cloud, ids)
				for _, id := range done {
					fmt.Fprintln(a.stdout, "deleted", id)
				}
				return err
			})
		},
	}
	rm.Flags().BoolVar(&orphaned, "orphaned", false, "remove every volume whose bake is no longer running")
	var sizeGiB int
	create := &cobra.Command{
		Use: "create IMAGE", Short: "Make a volume from an image's root snapshot, for bakes with -V (an external pool)", Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				v, err := service.CreateExternalVolume(ctx, t.cloud, args[0], sizeGiB)
				if err != nil {
					return err
				}
				return a.print(v, func() { fmt.Fprintln(a.stdout, v.ID) })
			})
		},
	}
	create.Flags().IntVar(&sizeGiB, "size", 0, "size in GiB (default: the snapshot's)")
	cmd.AddCommand(list, rm, create)
	return cmd
}

func (a *app) environmentsCommand() *cobra.Command {
	return &cobra.Command{
		Use: "environments", Short: "List the configured environments and their plugins", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"default": cfg.DefaultEnvironment, "environments": cfg.Environments}, func() {
				var rows [][]string
				for _, n := range cfg.EnvironmentNames() {
					e := cfg.Environments[n]
					mark := ""
					if n == cfg.DefaultEnvironment {
						mark = "*"
					}
					rows = append(rows, []string{n + mark, e[plugin.KindCloud], e[plugin.KindBlockDevice], e[plugin.KindVolume], e[plugin.KindDistro], e[plugin.KindProvisioner], e[plugin.KindFinalizer]})
				}
				a.table("NAME\tCLOUD\tBLOCKDEVICE\tVOLUME\tDISTRO\tPROVISIONER\tFINALIZER", rows)
				fmt.Fprintln(a.stdout, "(* default)")
			})
		},
	}
}

func (a *app) configCommand() *cobra.Command {
	return &cobra.Command{
		Use: "config", Short: "Print the merged configuration and the files it came from", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			plugins := map[string]any{}
			for _, n := range cfg.EnvironmentNames() {
				for kind, name := range cfg.Environments[n] {
					pc, err := cfg.PluginConfig(kind, name)
					if err == nil && pc != nil {
						plugins[string(kind)+"."+name] = pc
					}
				}
			}
			out := map[string]any{
				"sources": cfg.Sources, "state_dir": cfg.StateDir, "log_dir": cfg.LogDir, "lock_dir": cfg.LockDir, "store_fs": cfg.StoreFS, "binfmt": cfg.Binfmt,
				"context": cfg.Context, "plugins": plugins, "environments": cfg.Environments, "default_environment": cfg.DefaultEnvironment,
			}
			b, err := yaml.Marshal(out)
			if err != nil {
				return err
			}
			return a.print(out, func() { a.stdout.Write(b) })
		},
	}
}
