// Package cli is the aminate command line: the bake (`aminate [flags]
// PACKAGE`, with the original tool's flags) and subcommands for a cloud's
// images, snapshots, volumes, pools and gc, the environments and the
// merged configuration. Every command works on one cloud, chosen one way:
// --cloud, else the configured environment's; a command needing a
// capability that cloud lacks (plugin.Pool, plugin.DiskFiles, ...) says
// so. A command parses its flags, calls package service and prints what
// it returns (a.print: JSON with --output json, else its text); the
// hidden `bakery-bake` is the child a bakery worker runs for one bake.
// Exit codes: 0 success, 1 bake failure, 2 usage error.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/ui/console"

	// The built-in plugins register themselves.
	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// usageError marks errors that exit 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// app holds what every command shares.
type app struct {
	stdout, stderr io.Writer
	configFile     string
	output         string
	// cloud is --cloud: the cloud a command works on instead of the
	// configured environment's ("": the environment's).
	cloud   string
	tags    []string
	kmsKeys map[string]string
	flags   *pflag.FlagSet
	// logFormat is the configured console format (auto, text, json).
	logFormat string
	// con is the running worker's console.
	con *console.Console
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	service.Version = Version
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee service.ExitError
	if errors.As(err, &ee) { // the re-run child said why
		return ee.Code
	}
	fmt.Fprintln(stderr, "aminate: error:", err)
	var ue usageError
	var ce *config.Error
	var be *bake.UsageError
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &be) {
		return 2
	}
	return 1
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "aminate [flags] PACKAGE",
		Short: "Bake machine images: install one package into a copy of a base image",
		Long: `aminate bakes a machine image: it creates a volume from the base image's
snapshot, attaches and mounts it, installs PACKAGE in a chroot with the
distribution's package manager, snapshots the volume and registers the
snapshot as a new image tagged with its lineage.

PACKAGE is a repository package (name or name=version), a local .deb
(a path or file://...), or an http(s) URL to a .deb.`,
		Args:          a.args(cobra.ExactArgs(1)),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          a.runBake,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "one more aminator.yml, read after /etc/aminator and ~/.aminator")
	pf.StringVar(&a.output, "output", "text", "output format: text or json")
	pf.StringVar(&a.cloud, "cloud", "", "the cloud a command works on: local or ec2 (default: the environment's; a bake, foundation or test always runs on its environment's)")
	pf.String("state-dir", "", "the local cloud's state directory (default /var/lib/aminator)")
	pf.String("log-dir", "", "where bake logs go (default /var/log/aminator)")
	pf.String("store-fs", "", "volumes and snapshots: auto (default: a reflink filesystem in a loop file when the state directory has none), none, xfs or btrfs")
	pf.Bool("debug", false, "debug logging on the console")
	pf.String("log-format", "auto", "console output: auto (stage lines and progress bars on a terminal, text elsewhere), text (key=value) or json")
	pf.StringP("environment", "e", "", "environment (a named set of plugins) to use")
	pf.StringP("region", "r", "", "cloud region")
	markConfig(pf)
	a.bakeFlags(root.Flags())
	bakeCmd := &cobra.Command{
		Use:   "bake [flags] PACKAGE",
		Short: "Bake an image (the same as aminate PACKAGE; use it when a package is named like a subcommand)",
		Args:  a.args(cobra.ExactArgs(1)),
		RunE:  a.runBake,
	}
	a.bakeFlags(bakeCmd.Flags())
	root.AddCommand(bakeCmd, a.imagesCommand(), a.snapshotsCommand(), a.volumesCommand(),
		a.environmentsCommand(), a.configCommand(), a.versionCommand(), a.foundationCommand(), a.testCommand(),
		a.gcCommand(), a.fsckCommand(), a.initCommand(), a.poolCommand(), a.pushCommand(), a.serveCommand(), a.bakeryCommand(), a.bakeryBakeCommand(), a.bundleCommand(), a.keysCommand(), a.verifyCommand())
	return root
}

func (a *app) args(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := v(c, args); err != nil {
			return usageError{fmt.Errorf("%s (see %s --help)", err, c.CommandPath())}
		}
		return nil
	}
}

func (a *app) bakeFlags(f *pflag.FlagSet) {
	f.StringP("base-ami-id", "B", "", "base image id (not with -b)")
	f.StringP("base-ami-name", "b", "", "base image name, or FAMILY:LABEL (label candidate, release or previous; not with -B)")
	f.String("label", "", "with -b FAMILY: the newest image of that family carrying this channel label")
	f.StringP("name", "n", "", "image name (the suffix is appended); default from the package: {name}-{version}-{release}-{arch}-{suffix}-ebs")
	f.StringP("suffix", "s", "", "name suffix (default: UTC time as yyyymmddHHMM)")
	f.StringP("creator", "c", "", "creator tag (default aminator)")
	f.String("vm-type", "", "virtualization type: hvm or paravirtual (default hvm)")
	f.String("arch", "", "architecture: x86_64, arm64 or i386 (default: the base image's); a list (x86_64,arm64) with -b FAMILY bakes on the newest base of each, in parallel")
	f.Bool("keep-partial", false, "with --arch LIST: keep the images of the architectures that baked when another failed (the bake still exits 1)")
	f.Bool("enhanced-networking", false, "register with SR-IOV enhanced networking (hvm only)")
	f.Bool("ena-networking", false, "register with ENA networking (hvm only)")
	f.Int("root-volume-size", 0, "grow the root volume to this many GiB (never below the base's)")
	f.String("provisioner-ebs-type", "", "volume type while baking")
	f.String("register-ebs-type", "", "volume type recorded in the image")
	f.StringP("volume-id", "V", "", "use this existing volume (an external pool)")
	f.String("block-device", "", "attach at this device")
	f.Int("partition", 0, "the root filesystem is on this partition (0: the whole device)")
	f.BoolP("interactive", "i", false, "open a shell in the chroot after the install")
	f.String("boot-mode", "", "boot mode to register: legacy-bios, uefi or uefi-preferred (default: the base's)")
	f.Bool("tpm-support", false, "register with NitroTPM (TPM 2.0)")
	f.Bool("imds-v2-required", false, "register so instances require IMDSv2")
	f.StringSlice("copy-to", nil, "copy the image to these regions (comma-separated or repeated), in parallel")
	f.StringSlice("share-with", nil, "give these account ids launch permission (and the snapshots create-volume permission)")
	f.StringSlice("share-with-orgs", nil, "give these organisation ARNs launch permission")
	f.StringSlice("share-with-ous", nil, "give these organisational unit ARNs launch permission")
	f.String("deprecate-at", "", "deprecate the image (and its copies) at this time (RFC 3339)")
	f.Bool("preserve-on-error", false, "keep the volume and mounts when the bake fails, for debugging")
	f.Bool("script-network", false, "let package scripts use the network (they run without it by default); tags the image script_network=true")
	markConfig(f)
	f.String("package-sha256", "", "the SHA-256 (hex) the package file's or URL's bytes must have; checked before they are used")
	f.StringArrayVar(&a.tags, "tag", nil, "extra tag KEY=VALUE on the image and snapshot (repeatable; not one aminator sets; the cloud's limits apply)")
	f.StringToStringVar(&a.kmsKeys, "copy-kms-key", nil, "REGION=KEY: encrypt the copy in REGION with this KMS key (repeatable)")
	f.Bool("test", false, "boot-test the new image under qemu; a failed test exits 1 and tags the image boot_test=failed")
	bootTestFlags(f)
	f.Bool("dry-run", false, "resolve the base, check the flags, tags, package and (when known without a volume) the name, and stop before making anything")
	f.String("manifest", "", "write the result (image, package, base, timings, copies) as JSON to this file")
}

// bootTestFlags adds the boot test's accelerator and HTTP flags to f.
func bootTestFlags(f *pflag.FlagSet) {
	f.String("accel", "", "boot test accelerator: auto (KVM once a probe guest ran here, else TCG), kvm or tcg")
	f.Lookup("accel").Annotations = map[string][]string{configFlag: {"true"}}
	f.Bool("no-kvm", false, "the same as --accel tcg")
	f.IntSlice("expect-http", nil, "boot test: forward this guest port to the host's loopback and wait, within the timeout, until it answers HTTP with a status below 500 (repeatable; the image must configure its network by DHCP)")
	f.Lookup("expect-http").Annotations = map[string][]string{configFlag: {"true"}}
	f.String("like", "", "boot test: ec2 launches the disk as EC2 does (its firmware and loader, NVMe, instance metadata) and passes when ssh logs in; kernel boots the image's kernel directly and waits for a marker (default: ec2 when the disk has a boot loader)")
	f.String("test-boot-mode", "", "boot test of a disk that boots both ways: legacy-bios (SeaBIOS) or uefi (OVMF, the default)")
	f.String("ssh-user", "", "boot test: the user ssh logs in as (default admin, the cloud profile's)")
	f.Int("boot-timeout", 0, "boot test: seconds the image has to come up (default 300)")
	for _, n := range []string{"like", "test-boot-mode", "ssh-user", "boot-timeout"} {
		f.Lookup(n).Annotations = map[string][]string{configFlag: {"true"}}
	}
}

// configFlag marks flags that set a configuration key of the same name.
const configFlag = "aminator/config"

func markConfig(f *pflag.FlagSet) {
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Name == "config" || fl.Name == "output" || fl.Name == "cloud" {
			return
		}
		if fl.Annotations == nil {
			fl.Annotations = map[string][]string{}
		}
		fl.Annotations[configFlag] = []string{"true"}
	})
}

// loadConfig merges the configuration with the flags given on cmd.
func (a *app) loadConfig(cmd *cobra.Command) (*config.Config, error) {
	return a.loadConfigWith(cmd, nil, nil)
}

// loadConfigWith merges the configuration with the flags given on cmd and
// settings (by context key) as if they were flags too, and adds tags to
// the context's tags after --tag's.
func (a *app) loadConfigWith(cmd *cobra.Command, settings, tags map[string]string) (*config.Config, error) {
	if a.output != "text" && a.output != "json" {
		return nil, usagef("--output %q: use text or json", a.output)
	}
	flags := map[string]string{}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if _, ok := f.Annotations[configFlag]; ok {
			v := f.Value.String()
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				v = strings.Join(sv.GetSlice(), ",")
			}
			flags[strings.ReplaceAll(f.Name, "-", "_")] = v
		}
	})
	for k, v := range settings {
		flags[k] = v
	}
	if noKVM, _ := cmd.Flags().GetBool("no-kvm"); noKVM {
		if v, ok := flags["accel"]; ok && v != "tcg" {
			return nil, usagef("--no-kvm is --accel tcg; it contradicts --accel %s", v)
		}
		flags["accel"] = "tcg"
	}
	cfg, err := config.Load(config.Options{Extra: a.configFile, Flags: flags})
	if err != nil {
		return nil, err
	}
	a.logFormat = cfg.Context.LogFormat
	for _, t := range a.tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, usagef("--tag %q: use KEY=VALUE", t)
		}
		if cfg.Context.Tags == nil {
			cfg.Context.Tags = map[string]string{}
		}
		cfg.Context.Tags[k] = v
	}
	for k, v := range tags {
		if cfg.Context.Tags == nil {
			cfg.Context.Tags = map[string]string{}
		}
		cfg.Context.Tags[k] = v
	}
	for r, k := range a.kmsKeys {
		if cfg.Context.CopyKMSKeys == nil {
			cfg.Context.CopyKMSKeys = map[string]string{}
		}
		cfg.Context.CopyKMSKeys[r] = k
	}
	return cfg, nil
}

// logger is a command's console logger, in the configured format.
func (a *app) logger(debug bool) *slog.Logger {
	c, err := console.New(a.stderr, console.Options{Format: a.logFormat, Debug: debug})
	if err != nil { // the configuration was checked: not reached
		return slog.New(logging.Console(a.stderr, debug))
	}
	return slog.New(c.Handler())
}

// liveConsole is a console that (if live) draws running stages and
// progress bars on a terminal; the caller closes it.
func (a *app) liveConsole(debug, live bool) (*console.Console, error) {
	c, err := console.New(a.stderr, console.Options{Format: a.logFormat, Debug: debug, Live: live})
	if err != nil {
		return nil, usagef("--log-format: %v", err)
	}
	return c, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the version", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.print(map[string]string{"version": Version, "go": runtime.Version()}, func() {
				fmt.Fprintf(a.stdout, "aminate %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			})
		},
	}
}
