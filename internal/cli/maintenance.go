package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

func (a *app) gcCommand() *cobra.Command {
	var dry bool
	var bucket string
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove what no bake or image needs: volumes of dead bakes, unfinished snapshots, unused chunks",
		Long: `Remove what no bake or image needs from the environment's cloud (or
--cloud's); nothing of a job still running (its job lock held) is touched.
gc plans first, then removes each planned item after checking it again;
--dry-run prints the plan. On the local cloud: volumes of bakes that are
gone (and pool volumes a killed bake was taking), snapshots their maker
never finished, snapshots a killed bake never registered, manifests whose
snapshot row is gone, chunks no snapshot uses, and the scratch files,
locks and mount points of killed jobs. On any cloud: the stored SBOMs and
provenance (state directory's attest/) of the cloud's images that are gone. A manifest gc cannot read is
reported, and every chunk kept until it is fixed. With --cloud ec2: the
volumes and snapshots that bakes on this instance left (tagged by
aminator, their bake no longer running here); volumes are detached and
deleted, snapshots no image uses deleted. With --bucket: the S3 bundles
aminator uploaded there that no image of the account uses (uploads that
died half way, images deregistered). --dry-run only says.`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bucket != "" {
				return a.gcBundles(cmd, bucket, dry)
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				g, err := capability[plugin.GCPlanner](t, "gc")
				if err != nil {
					return err
				}
				p, err := g.PlanGarbage(ctx)
				if p == nil {
					return err
				}
				store, err2 := service.OpenAttest(t.cfg, t.name)
				if err2 != nil {
					return errors.Join(err, err2, a.runGC(ctx, p, dry))
				}
				defer store.Close()
				docs, err2 := service.PlanAttestGC(ctx, store, t.cloud, t.name)
				if docs != nil {
					p = gcreport.Join(p, docs)
				}
				return errors.Join(err, err2, a.runGC(ctx, p, dry))
			})
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only say what would be removed")
	cmd.Flags().StringVar(&bucket, "bucket", "", "collect the S3 bundles in this bucket (BUCKET[/PREFIX]) instead")
	return cmd
}

// runGC executes a gc plan, or with dry only reports it, and prints the
// report (the same way for every cloud).
func (a *app) runGC(ctx context.Context, p gcreport.Plan, dry bool) error {
	r, err := gcreport.Run(ctx, p, dry)
	return errors.Join(err, a.print(r, func() { r.WriteText(a.stdout) }))
}

func (a *app) fsckCommand() *cobra.Command {
	var repair bool
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Verify every stored chunk and clone and name the snapshots and images a bad one breaks",
		Long: `Verify every chunk of the snapshot store against its hash and every
snapshot's clone (reflink stores) against its manifest, and name the
snapshots and images a bad or missing chunk breaks. A clone that differs
from its manifest is dropped (new volumes are then made from the chunks).
It exits non-zero if anything was wrong.

With --repair, bad chunks are moved to data/store/quarantine/ (never
deleted) and rebuilt from any verified clone or volume that holds the same
data where a snapshot names the chunk; the images still broken are named,
and it exits non-zero if there are any. Storing the same data again (a bake
or an import) also stores a quarantined or missing chunk again.`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				c, err := capability[plugin.Checker](t, "store on this host to check")
				if err != nil {
					return err
				}
				r, err := c.Fsck(ctx, repair)
				if err != nil {
					return err
				}
				a.print(r, func() { a.printFsck(r) })
				if !r.OK() {
					return fmt.Errorf("the store is damaged: %d bad chunks, %d broken snapshots, %d broken images, %d bad clones", len(r.Bad), len(r.Broken)+len(r.MissingData), len(r.BrokenImages), len(r.BadClones))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "quarantine bad chunks and rebuild them from clones and volumes holding the same data")
	return cmd
}

// printFsck prints an fsck report as text, ending with "ok" when nothing
// is wrong.
func (a *app) printFsck(r *plugin.FsckReport) {
	fmt.Fprintf(a.stdout, "%d chunks checked, %d clones checked\n", r.Chunks, r.Clones)
	for h, why := range r.Bad {
		fmt.Fprintf(a.stdout, "bad chunk %s: %s\n", h, why)
	}
	for s, why := range r.BadClones {
		fmt.Fprintf(a.stdout, "bad clone of snapshot %s (dropped): %s\n", s, why)
	}
	for _, h := range r.Quarantined {
		fmt.Fprintf(a.stdout, "quarantined chunk %s\n", h)
	}
	for h, from := range r.Repaired {
		fmt.Fprintf(a.stdout, "repaired chunk %s from %s\n", h, from)
	}
	for s, hs := range r.Broken {
		fmt.Fprintf(a.stdout, "broken snapshot %s: %d bad chunks\n", s, len(hs))
	}
	for _, s := range r.MissingData {
		fmt.Fprintf(a.stdout, "snapshot %s has no data in the store\n", s)
	}
	for im, ss := range r.BrokenImages {
		fmt.Fprintf(a.stdout, "broken image %s (snapshots %s)\n", im, strings.Join(ss, ", "))
	}
	if r.OK() {
		fmt.Fprintln(a.stdout, "ok")
	}
}

func (a *app) initCommand() *cobra.Command {
	var fs string
	var size int64
	var unmount, binfmtReg bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Set up the state directory; --store-fs chooses where volumes and snapshots go",
		Long: `Set up the local cloud's state directory. Volumes and the snapshot store
go on a reflink filesystem (xfs, else btrfs) of their own, made in a sparse
loop file under the state directory and mounted on its data/: there new
volumes are reflink clones of their snapshot (milliseconds, whatever the
size) and a snapshot reads only the blocks a bake changed. By default
(store_fs: auto) the first command that needs the store does this by itself
when the state directory's filesystem has no reflinks (ext4) and the kernel
has xfs or btrfs; init does it now, or as you choose:

  --store-fs xfs|btrfs   that filesystem, --store-size GiB big
  --store-fs none        keep volumes and snapshots in the state directory
                         as it is, and never set up a store filesystem

Only an empty state directory gets a store filesystem; an existing store is
never moved. The store filesystem stays mounted between commands; any
aminate command mounts it again (after a reboot, or --unmount).

  --binfmt   let this host bake images of the architectures it does not
             run natively (arm64 on x86_64, x86_64 on arm64): mount
             binfmt_misc if it is not, and register the static qemu-user
             emulator (Debian's qemu-user-static) with the F flag for each
             one no handler runs yet. Run again, it changes nothing. A
             handler is the whole host's, until it reboots.`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("init needs root")
			}
			if binfmtReg {
				return a.initBinfmt(cfg.Binfmt.Dir)
			}
			name, err := service.ChooseCloud(cfg, a.cloud)
			if err != nil {
				return usageError{err}
			}
			setup, err := service.StoreSetup(name)
			if err != nil {
				return err
			}
			ctx, stop := service.SignalContext()
			defer stop()
			if unmount {
				return setup.UnmountStore(ctx, cfg.StateDir)
			}

			switch fs {
			case "":
			case "auto":
				if err := setup.PrepareStore(ctx, cfg.StateDir, fs, a.logger(cfg.Context.Debug)); err != nil {
					return err
				}
			case "none", "xfs", "btrfs":
				if err := setup.InitStore(ctx, cfg.StateDir, fs, size<<30, a.logger(cfg.Context.Debug)); err != nil {
					return err
				}
			default:
				return usagef("--store-fs %q: auto, xfs, btrfs or none", fs)
			}
			// Unless chosen above, opening the cloud sets up the store as store_fs says.
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				disks, err := capability[plugin.DiskFiles](t, "store on this host")
				if err != nil {
					return err
				}
				reflink := disks.Reflink()
				return a.print(map[string]any{"state_dir": cfg.StateDir, "reflink": reflink}, func() {
					fmt.Fprintf(a.stdout, "%s ready; reflink clones: %v\n", cfg.StateDir, reflink)
				})
			})
		},
	}
	cmd.Flags().StringVar(&fs, "store-fs", "", "xfs or btrfs: a reflink filesystem for volumes and snapshots; none: the state directory as it is; auto (default): as store_fs says")
	cmd.Flags().Int64Var(&size, "store-size", 256, "its size in GiB (a sparse file: space is used as data arrives)")
	cmd.Flags().BoolVar(&unmount, "unmount", false, "unmount the store filesystem")
	cmd.Flags().BoolVar(&binfmtReg, "binfmt", false, "register qemu-user for the architectures this host does not run natively, so bakes on their bases can run a package's scripts")
	return cmd
}

// initBinfmt registers the emulators and says what it found and did.
func (a *app) initBinfmt(dir string) error {
	e, err := service.RegisterEmulators(dir)
	if err != nil {
		return err
	}
	return a.print(e, func() {
		if e.Mounted {
			fmt.Fprintf(a.stdout, "mounted binfmt_misc at %s\n", e.Dir)
		}
		for _, x := range e.Archs {
			state := "registered already"
			if x.Registered {
				state = "registered now"
			}
			fmt.Fprintf(a.stdout, "%s: %s: %s runs its programs (flags %s)\n", x.Arch, state, x.Interpreter, x.Flags)
		}
		if len(e.Archs) == 0 {
			fmt.Fprintln(a.stdout, "this host runs every architecture natively; nothing to register")
		}
	})
}

func (a *app) poolCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "Keep ready volumes of base images, so bakes skip making one",
		Long: `Keep ready volumes of base images, so bakes skip making one, in the
environment's cloud (or --cloud's). On the local cloud: volume files of the
base's snapshot. On EC2 (-e ec2_apt_linux, or --cloud ec2): EBS volumes of
the base's root snapshot in this instance's availability zone, tagged
purpose=pool, base and host (cloud.ec2 pool_attach: true keeps them
attached to this instance too).`}
	status := &cobra.Command{
		Use: "status", Short: "Show the pooled base snapshots", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				p, err := service.PoolOf(t.cloud, t.name)
				if err != nil {
					return err
				}
				ps, err := p.PoolStatus(ctx)
				if err != nil {
					return err
				}
				return printList(a, ps, "SNAPSHOT\tIMAGES\tTARGET\tREADY\tATTACHED\tCREATING", func(p plugin.PoolStatus) []string {
					return []string{p.SnapshotID, strings.Join(p.Images, ","), fmt.Sprint(p.Target), fmt.Sprint(p.Ready), fmt.Sprint(p.Attached), fmt.Sprint(p.Creating)}
				})
			})
		},
	}
	var size int
	var snap string
	fill := &cobra.Command{
		Use: "fill IMAGE", Short: "Keep --size ready volumes of IMAGE's root snapshot (and make them now)",
		Args: a.args(cobra.RangeArgs(0, 1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (snap == "") {
				return usagef("name an image")
			}
			want := size
			if !cmd.Flags().Changed("size") {
				want = -1 // keep the current target (a refill)
				if len(args) == 1 {
					want = 2
				}
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				s, made, err := service.FillPool(ctx, t.cfg, t.cloud, t.name, strings.Join(args, ""), snap, want, a.logger(t.cfg.Context.Debug))
				if err != nil {
					return err
				}
				return a.print(map[string]any{"snapshot": s, "made": made}, func() { fmt.Fprintf(a.stdout, "%s: made %d volumes\n", s, made) })
			})
		},
	}
	fill.Flags().IntVar(&size, "size", 2, "how many ready volumes to keep")
	fill.Flags().StringVar(&snap, "snapshot", "", "a snapshot id instead of an image (used for background refills)")
	fill.Flags().MarkHidden("snapshot")
	drain := &cobra.Command{
		Use: "drain [IMAGE]", Short: "Delete ready volumes (of IMAGE, or all) and stop keeping them", Args: a.args(cobra.RangeArgs(0, 1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				n, err := service.DrainPool(ctx, t.cloud, t.name, strings.Join(args, ""))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted %d ready volumes\n", n)
				return nil
			})
		},
	}
	cmd.AddCommand(status, fill, drain)
	return cmd
}

// refusedPush makes a push refused for its disk's boot loaders a usage
// error (exit 2: a refused input, nothing made).
func refusedPush(err error) error {
	if errors.Is(err, bootdisk.ErrCannotBoot) {
		return usageError{err}
	}
	return err
}

func (a *app) pushCommand() *cobra.Command {
	var o push.Options
	var tags []string
	var storeType string
	var s3 pushS3Flags
	cmd := &cobra.Command{
		Use:   "push IMAGE",
		Short: "Send a local image to EC2 through the EBS direct APIs and register it there (from any machine)",
		Long: `Send an image of the local cloud to EC2 and register it as an AMI, from any
machine with AWS credentials: no EC2 instance and no attached volume are
needed. Each 512 KiB chunk of the store is one EBS block; when the image's
parent snapshot was pushed to the region before, only the chunks that
differ are sent, as an incremental snapshot. Region and credentials come
from the AWS configuration (or -r).

With --store-type s3 the image becomes an S3-backed (instance-store) AMI
instead: its disk is bundled as the EC2 AMI tools do (--cert,
--privatekey, --account), uploaded to --bucket and registered from the
manifest.

The image's disk is read for its boot loaders first, and it is registered
with the boot mode they allow (uefi-preferred with both, uefi, or
legacy-bios; the local image's own boot mode when the disk boots it). A
disk EC2's firmware could not boot is refused (exit 2) and nothing is
made; --allow-no-loader registers a disk with no loader at all, with no
boot mode.`,
		Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			defer func() { err = refusedPush(err) }()
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if o.Tags, err = parseTags(tags); err != nil {
				return err
			}
			switch storeType {
			case "s3":
				return a.pushS3(cfg, args[0], o, s3)
			case "ebs":
			default:
				return usagef("--store-type %q: ebs or s3", storeType)
			}
			ctx, stop := service.SignalContext()
			defer stop()
			con, err := a.liveConsole(cfg.Context.Debug, true)
			if err != nil {
				return err
			}
			defer con.Close()
			a.stdout = afterConsole{a.stdout, con}
			log := slog.New(con.Handler())
			ctx = progress.With(ctx, progress.Multi(con.Progress(), progress.Log(log, 10*time.Second)))
			o.Log = log
			im, res, err := service.PushLocalToEC2(ctx, cfg, args[0], o)
			if err != nil {
				return err
			}
			return a.print(res, func() {
				log.Info("pushed", "image", im.ID, "ami", res.ImageID, "snapshot", res.SnapshotID, "region", res.Region,
					"blocks", res.Blocks, "bytes", res.Bytes, "parent", res.Parent, "took", res.Duration.Round(time.Millisecond))
				fmt.Fprintln(a.stdout, res.ImageID)
			})
		},
	}
	cmd.Flags().StringVarP(&o.Name, "name", "n", "", "AMI name (default: the local image's)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "extra tag KEY=VALUE (repeatable)")
	cmd.Flags().BoolVar(&o.Full, "full", false, "send every block, even when the parent was pushed before")
	cmd.Flags().IntVar(&o.Workers, "workers", 8, "blocks (or S3 parts) in flight")
	cmd.Flags().BoolVar(&o.AllowNoLoader, "allow-no-loader", false, "register a disk with no boot loader (not to be booted), with no boot mode, instead of refusing it")
	cmd.Flags().StringVar(&storeType, "store-type", "ebs", "ebs (a snapshot through the EBS direct APIs) or s3 (an instance-store image from a bundle in --bucket)")
	s3.flags(cmd.Flags())
	return cmd
}
