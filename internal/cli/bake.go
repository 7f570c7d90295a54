package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/engine/foundation"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/ui/console"
)

// job runs fn as a service job of kind (see service.RunJob) with this
// command's console: live unless an interactive shell takes the terminal.
// stdin is the re-run child's standard input (nil: this process's).
// A job runs in its environment, on the environment's cloud: --cloud
// naming another is refused rather than ignored.
func (a *app) job(cfg *config.Config, kind string, stdin io.Reader, fn func(ctx context.Context, j *service.Job) error) error {
	if name, err := service.CloudName(cfg); err == nil && a.cloud != "" && a.cloud != name {
		return usagef("--cloud %s: a %s runs on its environment's cloud (%s's is %s); choose the environment with -e", a.cloud, kind, cfg.Context.Environment, name)
	}
	return service.RunJob(cfg, service.JobOptions{
		Kind: kind, Preserve: kind == "bake" && cfg.Context.PreserveOnError, Stdin: stdin, Log: a.logger(cfg.Context.Debug),
		Console: func() (service.Console, error) {
			con, err := a.liveConsole(cfg.Context.Debug, !cfg.Context.Interactive)
			if err != nil {
				return nil, err
			}
			a.con = con
			a.stdout = afterConsole{a.stdout, con}
			return con, nil
		},
	}, fn)
}

// bakeRun is what a bake does besides baking.
type bakeRun struct {
	test, dry bool
	manifest  string
	// sha256 is what the package's bytes must hash to ("": unchecked).
	sha256 string
	// stdin is the re-run child's standard input (nil: this process's).
	stdin io.Reader
	// bases are the base ids by architecture of a bake for several,
	// resolved before (the bakery's); nil: the newest of the family's.
	bases map[string]string
}

// request is the bake the configuration and the run ask for.
func (r bakeRun) request(cfg *config.Config, pkg string) bake.Request {
	req := bake.RequestFromConfig(cfg.Context, pkg)
	req.DryRun, req.PackageSHA256 = r.dry, r.sha256
	return req
}

func (a *app) runBake(cmd *cobra.Command, args []string) error {
	cfg, err := a.loadConfig(cmd)
	if err != nil {
		return err
	}
	var r bakeRun
	r.test, _ = cmd.Flags().GetBool("test")
	r.dry, _ = cmd.Flags().GetBool("dry-run")
	r.manifest, _ = cmd.Flags().GetString("manifest")
	r.sha256, _ = cmd.Flags().GetString("package-sha256")
	if r.dry && (r.test || cfg.Context.Interactive) {
		return usagef("--dry-run makes no image to test or open a shell in")
	}
	return a.bake(cfg, args[0], r)
}

// bake bakes pkg as the configuration says, prints the image (or, dry,
// what would be made) and says what was made.
func (a *app) bake(cfg *config.Config, pkg string, r bakeRun) error {
	if len(cfg.Context.Arches()) > 1 {
		return a.bakeArches(cfg, pkg, r)
	}
	return a.job(cfg, "bake", r.stdin, func(ctx context.Context, j *service.Job) error {
		env, err := j.OpenEnvironment(ctx)
		if err != nil {
			return err
		}
		defer env.Close()
		req := r.request(cfg, pkg)
		res, err := j.Bake(ctx, env, req)
		if err != nil {
			return err
		}
		if r.dry {
			return a.printPlan(res)
		}
		im, testErr := res.Image, error(nil)
		if r.test {
			im, testErr = j.TestImage(ctx, env, res.Image)
		}
		a.done(j.Log, "bake", im, res.Duration)
		if r.manifest != "" {
			if err := writeJSON(r.manifest, res); err != nil {
				return errors.Join(testErr, err)
			}
		}
		if err := a.print(res, func() { fmt.Fprintln(a.stdout, res.Image.ID) }); err != nil {
			return err
		}
		return testErr
	})
}

// printPlan says what a dry run found.
func (a *app) printPlan(res *bake.Result) error {
	return a.print(res, func() { a.printPlanText(res) })
}

// printPlanText says in a line what a dry run found.
func (a *app) printPlanText(res *bake.Result) {
	fmt.Fprintf(a.stdout, "would bake %s (%s) onto %s (%s): a %d-byte volume", res.Plan.Package.Raw, res.Plan.Package.Kind, res.Base.ID, res.Base.Name, res.Plan.VolumeBytes)
	if res.Plan.Name != "" {
		fmt.Fprintf(a.stdout, ", image %s (the name is free)", res.Plan.Name)
	} else {
		fmt.Fprint(a.stdout, "; the image name depends on the version the image's repositories offer: the bake checks it as soon as it knows it (apt: before installing; yum: right after)")
	}
	fmt.Fprintln(a.stdout)
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
// name and tags under a `==>` line, elsewhere key=value lines.
func (a *app) done(log *slog.Logger, kind string, im *plugin.Image, took time.Duration) {
	if !a.con.Pretty() {
		log.Info(kind+" done", "image", im.ID, "name", im.Name, "took", took.Round(time.Millisecond))
		for _, k := range slices.Sorted(maps.Keys(im.Tags)) {
			log.Info("tag", "key", k, "value", im.Tags[k])
		}
		return
	}
	log.Debug(kind+" done", "image", im.ID, "name", im.Name, "took", took.Round(time.Millisecond))
	rows := []console.Row{{Key: "image", Value: im.ID}, {Key: "name", Value: im.Name}}
	var tags strings.Builder
	tw := tabwriter.NewWriter(&tags, 0, 0, 2, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(im.Tags)) {
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

func (a *app) testCommand() *cobra.Command {
	var o boottest.Options
	cmd := &cobra.Command{
		Use:   "test IMAGE",
		Short: "Launch an image under qemu as EC2 would and log in over ssh (the stored image is not modified)",
		Long: `Launch an image under qemu as EC2 would and log in over ssh (the stored
image is not modified). A disk with a boot loader is launched like EC2
(--like ec2): the firmware of its boot mode (SeaBIOS for legacy-bios, OVMF
for uefi; --test-boot-mode picks one for a disk that boots both ways) boots
the disk's own loader from an NVMe device, SMBIOS says Amazon EC2, and
AWS's instance metadata mock answers at 169.254.169.254 with a key pair made
for the test; the test passes when ssh as the image's default user
(--ssh-user, default admin) with that key runs a command. A failure names
the stage that failed (no loader, kernel without root, no network, key not
installed, no ssh) and quotes the console. The VM, its metadata service and
ssh share a network namespace of their own: the guest reaches neither the
host nor the outside. A disk without a loader is booted by its kernel
directly (--like kernel) and passes when multi-user.target is reached.

With --expect-http PORT (repeatable), each guest port is forwarded and must
also answer an HTTP GET of / with a status below 500 within --timeout; the
image must configure its network by DHCP.`,
		Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.job(cfg, "test", nil, func(ctx context.Context, j *service.Job) error {
				env, err := j.OpenEnvironment(ctx)
				if err != nil {
					return err
				}
				defer env.Close()
				im, err := service.Find(ctx, env.Cloud, args[0])
				if err != nil {
					return err
				}
				res, err := j.BootTest(ctx, env, im, o)
				if res == nil {
					return err
				}
				a.print(res, func() { // a failed test's report is JSON only: the log said why
					switch {
					case err != nil:
					case res.Like == boottest.LikeEC2:
						fmt.Fprintf(a.stdout, "%s boots like EC2 (%s, %s, %s); this logged in, from the VM's own network namespace: %s\n", im.ID, res.BootMode, res.Accel, res.Duration.Round(time.Second), res.SSH)
					default:
						fmt.Fprintf(a.stdout, "%s boots (%s, %s)\n", im.ID, res.Accel, res.Duration.Round(time.Second))
					}
				})
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "how long to wait for the system to come up (default 5m, or --boot-timeout)")
	cmd.Flags().IntVar(&o.MemoryMiB, "memory", 1024, "VM memory in MiB")
	bootTestFlags(cmd.Flags())
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
			if len(cfg.Context.Arches()) > 1 {
				return usagef("--arch %s: a foundation is made for one architecture; make one for each", cfg.Context.Arch)
			}
			if cfg.Context.Arch != "" {
				o.Arch = cfg.Context.Arch
			}
			o.Kernel = !noKernel
			if o.SourceDateEpoch, err = sourceDateEpoch(cmd.Flags().Lookup("source-date-epoch")); err != nil {
				return err
			}
			o.Tags = map[string]string{}
			for k, v := range cfg.Context.Tags {
				o.Tags[k] = v
			}
			return a.job(cfg, "foundation", nil, func(ctx context.Context, j *service.Job) error {
				env, err := j.OpenEnvironment(ctx)
				if err != nil {
					return err
				}
				defer env.Close()
				res, err := j.Foundation(ctx, env, o)
				if !a.con.Pretty() { // on a terminal the stage lines said it
					for _, t := range res.Timings {
						j.Log.Info("timing", "stage", t.Stage, "took", t.Duration.Round(time.Millisecond))
					}
				}
				if err != nil {
					return err
				}
				j.Log.Debug("foundation", "kernel", res.Kernel, "packages", res.Packages)
				im, testErr := res.Image, error(nil)
				if test {
					im, testErr = j.TestImage(ctx, env, res.Image)
				}
				a.done(j.Log, "foundation", im, res.Duration)
				a.print(res, func() { fmt.Fprintln(a.stdout, res.Image.ID) })
				return testErr
			})
		},
	}
	f := cmd.Flags()
	f.StringP("name", "n", "", "family name (default debian-RELEASE); the image is named NAME-SUFFIX")
	f.StringP("suffix", "s", "", "name suffix (default: UTC time as yyyymmddHHMM)")
	f.StringP("creator", "c", "", "creator tag")
	f.String("arch", "", "architecture: x86_64 (default), arm64 or i386; another than the host's needs its binfmt_misc handler (qemu-user-static)")
	markConfig(f)
	f.StringVar(&o.Release, "release", "bookworm", "Debian release (bookworm, trixie, ...)")
	f.StringVar(&o.Mirror, "mirror", "", "Debian mirror (default: the host's apt configuration)")
	f.IntVar(&o.SizeGiB, "size", 2, "volume size in GiB")
	f.StringVar(&o.Layout, "layout", "", "hybrid (the cloud profile's default on x86_64): GRUB for BIOS and UEFI on one GPT disk; grub-uefi (its default on arm64, which boots UEFI only): GRUB for UEFI; uefi: systemd-boot (x86_64); whole (minimal's default): filesystem on the whole device, no loader; gpt: root on GPT partition 1, no loader")
	f.StringVar(&o.Profile, "profile", "cloud", "cloud: an image EC2 can launch and a person can log into (cloud kernel, GRUB, cloud-init, ssh, DHCP); minimal: a pristine Debian")
	f.StringVar(&o.FS, "fs", "ext4", "root filesystem: ext4 or xfs")
	f.BoolVar(&noKernel, "no-kernel", false, "no kernel, systemd or initramfs (a chroot-only image)")
	f.StringSliceVar(&o.Include, "include", nil, "more packages to install (comma-separated)")
	f.StringVar(&o.ScratchDir, "scratch-dir", "", "where to build the tree (default /dev/shm when it has room)")
	f.BoolVar(&test, "test", false, "boot-test the image after registering it")
	f.String("source-date-epoch", "", "make the disk reproducible: seconds since 1970 its times are clamped to, with its UUIDs derived from the inputs (default: $SOURCE_DATE_EPOCH; unset: not reproducible)")
	bootTestFlags(f)
	f.StringArrayVar(&a.tags, "tag", nil, "extra tag KEY=VALUE (repeatable; not one aminator sets; the cloud's limits apply)")
	return cmd
}

// sourceDateEpoch is a foundation's --source-date-epoch, else the
// environment's SOURCE_DATE_EPOCH (empty is unset), else nil (not
// reproducible).
func sourceDateEpoch(flag *pflag.Flag) (*int64, error) {
	v, from := flag.Value.String(), "--source-date-epoch"
	if !flag.Changed {
		var ok bool
		if v, ok = os.LookupEnv("SOURCE_DATE_EPOCH"); !ok || v == "" {
			return nil, nil
		}
		from = "SOURCE_DATE_EPOCH"
	}
	n, err := foundation.ParseEpoch(v, time.Now())
	if err != nil {
		return nil, usagef("%s: %v", from, err)
	}
	return &n, nil
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
