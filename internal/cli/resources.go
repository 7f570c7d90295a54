package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/aminator-go/aminator/internal/bake"
	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/cloud/local"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/mntns"
	"github.com/aminator-go/aminator/internal/plugin"
)

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// withLocal loads the configuration and opens the local cloud.
func (a *app) withLocal(cmd *cobra.Command, fn func(ctx context.Context, c *local.Cloud) error) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	pc, err := cfg.PluginConfig(plugin.KindCloud, "local")
	if err != nil {
		return err
	}
	if !mntns.InChild() && os.Geteuid() == 0 {
		if err := a.prepareStore(cfg); err != nil {
			return err
		}
	}
	s := pc.(*local.Settings)
	c, err := local.Open(local.Options{StateDir: cfg.StateDir, LockDir: cfg.LockDir, Region: cfg.Context.Region, Zone: s.Zone,
		Log: a.logger(cfg.Context.Debug), ChunkSize: s.ChunkSize, Compress: s.Compress})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signalContext()
	defer stop()
	return fn(ctx, c)
}

// prepareStore mounts the local cloud's store filesystem, or sets one up
// on a new state directory (store_fs), in the host's mount namespace.
func (a *app) prepareStore(cfg *config.Config) error {
	ctx, stop := signalContext()
	defer stop()
	return local.PrepareDataFS(ctx, cfg.StateDir, cfg.StoreFS, a.logger(cfg.Context.Debug))
}

// withCloud runs fn on the configured environment's cloud (the local
// cloud, or EC2 with -e ec2_apt_linux).
func (a *app) withCloud(cmd *cobra.Command, fn func(ctx context.Context, c plugin.Cloud) error) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	if cfg.Environments[cfg.Context.Environment][plugin.KindCloud] == "local" {
		return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error { return fn(ctx, c) })
	}
	ctx, stop := signalContext()
	defer stop()
	env, err := bake.NewEnvironment(cfg, a.logger(cfg.Context.Debug))
	if err != nil {
		return err
	}
	defer env.Close()
	return fn(ctx, env.Cloud)
}

// printList prints items as a JSON list (empty, not null, when there are
// none) or as a table with one row per item.
func printList[T any](a *app, items []T, header string, row func(T) []string) error {
	if a.output == "json" {
		if items == nil {
			items = []T{}
		}
		return a.printJSON(items)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	a.table(header, rows)
	return nil
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

// findImage finds an image by id, name or FAMILY:LABEL.
func findImage(ctx context.Context, c plugin.Cloud, ref string) (*plugin.Image, error) {
	if ids.Valid("ami", ref) {
		return c.Image(ctx, plugin.ImageQuery{ID: ref})
	}
	if family, label := channels.SplitRef(ref); label != "" {
		return channels.Resolve(ctx, c, family, label)
	}
	return c.Image(ctx, plugin.ImageQuery{Name: ref})
}

func (a *app) imagesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "List, show, import, promote, diff, export and remove images"}
	var listFamily, listLabel, listRole string
	var listTags []string
	list := &cobra.Command{
		Use: "list", Short: "List images, newest first (--family, --label, --role, --tag filter)", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := plugin.Tags{}
			for k, v := range map[string]string{channels.TagFamily: listFamily, channels.TagChannel: listLabel, channels.TagRole: listRole} {
				if v != "" {
					filter[k] = v
				}
			}
			for _, t := range listTags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return usagef("--tag %q: use KEY=VALUE", t)
				}
				filter[k] = v
			}
			return a.withCloud(cmd, func(ctx context.Context, c plugin.Cloud) error {
				ims, err := c.FindImages(ctx, filter)
				if err != nil {
					return err
				}
				return printList(a, ims, "ID\tNAME\tARCH\tAPPVERSION\tROLE\tCHANNEL\tCREATED", func(im *plugin.Image) []string {
					return []string{im.ID, im.Name, im.Architecture, im.Tags["appversion"], im.Tags[channels.TagRole], im.Tags[channels.TagChannel], age(im.CreatedAt)}
				})
			})
		},
	}
	list.Flags().StringVar(&listFamily, "family", "", "only this family")
	list.Flags().StringVar(&listLabel, "label", "", "only images carrying this channel label")
	list.Flags().StringVar(&listRole, "role", "", "only foundation, base or app images")
	list.Flags().StringArrayVar(&listTags, "tag", nil, "only images with this tag KEY=VALUE (repeatable)")
	var showLineage bool
	show := &cobra.Command{
		Use: "show IMAGE", Short: "Show an image (by id, name or FAMILY:LABEL) with its tags", Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, c plugin.Cloud) error {
				im, err := findImage(ctx, c, args[0])
				if err != nil {
					return err
				}
				if showLineage {
					chain := lineage(ctx, c, im)
					if a.output == "json" {
						return a.printJSON(chain)
					}
					a.printLineage(chain)
					return nil
				}
				if a.output == "json" {
					return a.printJSON(im)
				}
				fmt.Fprintf(a.stdout, "id:              %s\nname:            %s\ndescription:     %s\narchitecture:    %s\nvirtualization:  %s\nroot device:     %s\nstate:           %s\ncreated:         %s\n",
					im.ID, im.Name, im.Description, im.Architecture, im.VirtualizationType, im.RootDeviceName, im.State, age(im.CreatedAt))
				fmt.Fprintln(a.stdout, "block devices:")
				for _, b := range im.BlockDevices {
					if b.SnapshotID != "" {
						fmt.Fprintf(a.stdout, "  %s  %s  %d GiB  %s\n", b.DeviceName, b.SnapshotID, b.VolumeSizeGiB, b.VolumeType)
					} else {
						fmt.Fprintf(a.stdout, "  %s  %s\n", b.DeviceName, b.VirtualName)
					}
				}
				fmt.Fprintln(a.stdout, "tags:")
				for _, k := range sortedKeys(im.Tags) {
					fmt.Fprintf(a.stdout, "  %s = %s\n", k, im.Tags[k])
				}
				return nil
			})
		},
	}
	show.Flags().BoolVar(&showLineage, "lineage", false, "print the image's ancestor chain (foundation -> base -> app)")
	var keepSnaps bool
	rm := &cobra.Command{
		Use: "rm IMAGE...", Short: "Deregister images and delete their snapshots", Args: a.args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, c plugin.Cloud) error {
				var errs []error
				for _, ref := range args {
					im, err := findImage(ctx, c, ref)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if err := c.DeregisterImage(ctx, im.ID); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintln(a.stdout, "deregistered", im.ID)
					if keepSnaps {
						continue
					}
					for _, b := range im.BlockDevices {
						if b.SnapshotID == "" {
							continue
						}
						if err := c.DeleteSnapshot(ctx, b.SnapshotID); err != nil {
							errs = append(errs, err)
						} else {
							fmt.Fprintln(a.stdout, "deleted", b.SnapshotID)
						}
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	rm.Flags().BoolVar(&keepSnaps, "keep-snapshots", false, "keep the image's snapshots")
	var imp local.ImportOptions
	var impTags []string
	var importRole string
	imp.Architecture, imp.VirtualizationType = "x86_64", "hvm"
	importCmd := &cobra.Command{
		Use:   "import NAME FILE.img",
		Short: "Register a raw disk image (whole-device filesystem or partitioned) as an image",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			imp.Name = args[0]
			if imp.Name == "" || len(imp.Name) > 128 || strings.ContainsAny(imp.Name, " \t\n") {
				return usagef("image name %q: 1 to 128 characters, no spaces", imp.Name)
			}
			switch importRole {
			case channels.RoleFoundation, channels.RoleBase, channels.RoleApp:
			default:
				return usagef("--role %q: foundation, base or app", importRole)
			}
			imp.Tags = plugin.Tags{channels.TagRole: importRole, channels.TagFamily: imp.Name}
			for _, t := range impTags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return usagef("--tag %q: use KEY=VALUE", t)
				}
				imp.Tags[k] = v
			}
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				im, err := c.Import(ctx, args[1], imp)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(im)
				}
				fmt.Fprintln(a.stdout, im.ID)
				return nil
			})
		},
	}
	importCmd.Flags().StringVar(&imp.Architecture, "arch", "x86_64", "architecture of the image")
	importCmd.Flags().StringVar(&imp.VirtualizationType, "vm-type", "hvm", "virtualization type")
	importCmd.Flags().StringVar(&imp.Description, "description", "", "description")
	importCmd.Flags().StringArrayVar(&impTags, "tag", nil, "tag KEY=VALUE (repeatable)")
	importCmd.Flags().StringVar(&importRole, "role", channels.RoleFoundation, "role: foundation (a pristine OS; bakes on it make base images), base or app")
	cmd.AddCommand(list, show, rm, importCmd, a.promoteCommand(), a.diffCommand(), a.exportCommand())
	return cmd
}

func (a *app) snapshotsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "snapshots", Short: "List and remove snapshots in the local cloud"}
	list := &cobra.Command{
		Use: "list", Short: "List snapshots, newest first", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				ss, err := c.Snapshots(ctx)
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
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				var errs []error
				for _, id := range args {
					if err := c.DeleteSnapshot(ctx, id); err != nil {
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
	cmd := &cobra.Command{Use: "volumes", Short: "List and remove volumes in the local cloud"}
	list := &cobra.Command{
		Use: "list", Short: "List volumes; ORPHANED marks those whose bake is gone", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				vs, err := c.Volumes(ctx)
				if err != nil {
					return err
				}
				return printList(a, vs, "ID\tSTATE\tSNAPSHOT\tBYTES\tDEVICE\tBAKE\t", func(v *plugin.Volume) []string {
					o := ""
					if v.Orphaned {
						o = "ORPHANED"
					}
					return []string{v.ID, v.State, v.SnapshotID, fmt.Sprint(v.SizeBytes), v.Device, v.Tags["bake"], o}
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
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				if orphaned {
					vs, err := c.Volumes(ctx)
					if err != nil {
						return err
					}
					for _, v := range vs {
						if v.Orphaned {
							args = append(args, v.ID)
						}
					}
				}
				var errs []error
				for _, id := range args {
					if err := c.DeleteVolume(ctx, id); err != nil {
						errs = append(errs, err)
					} else {
						fmt.Fprintln(a.stdout, "deleted", id)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	rm.Flags().BoolVar(&orphaned, "orphaned", false, "remove every volume whose bake is no longer running")
	var sizeGiB int
	create := &cobra.Command{
		Use: "create IMAGE", Short: "Make a volume from an image's root snapshot, for bakes with -V (an external pool)", Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				im, err := findImage(ctx, c, args[0])
				if err != nil {
					return err
				}
				r := im.Root()
				if r == nil || r.SnapshotID == "" {
					return fmt.Errorf("image %s has no root snapshot", im.ID)
				}
				v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: r.SnapshotID, SizeBytes: int64(sizeGiB) << 30, Tags: plugin.Tags{"purpose": "external", "ami": im.ID}})
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(v)
				}
				fmt.Fprintln(a.stdout, v.ID)
				return nil
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
			if a.output == "json" {
				return a.printJSON(map[string]any{"default": cfg.DefaultEnvironment, "environments": cfg.Environments})
			}
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
			return nil
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
				"sources": cfg.Sources, "state_dir": cfg.StateDir, "log_dir": cfg.LogDir, "lock_dir": cfg.LockDir, "store_fs": cfg.StoreFS,
				"context": cfg.Context, "plugins": plugins, "environments": cfg.Environments, "default_environment": cfg.DefaultEnvironment,
			}
			if a.output == "json" {
				return a.printJSON(out)
			}
			b, err := yaml.Marshal(out)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
}
