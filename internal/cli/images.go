package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/treediff"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/service"
)

func (a *app) imagesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "List, show, import, promote, diff, export and remove images, print their SBOMs"}
	cmd.AddCommand(a.imagesListCommand(), a.imagesShowCommand(), a.imagesRmCommand(), a.imagesImportCommand(),
		a.promoteCommand(), a.diffCommand(), a.exportCommand(), a.imagesSBOMCommand())
	return cmd
}

// parseTags reads repeated --tag KEY=VALUE flags.
func parseTags(tags []string) (plugin.Tags, error) {
	out := plugin.Tags{}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, usagef("--tag %q: use KEY=VALUE", t)
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) imagesListCommand() *cobra.Command {
	var family, label, role, has string
	var tags []string
	list := &cobra.Command{
		Use: "list", Short: "List images, newest first (--family, --label, --role, --tag filter; --has: those carrying a package)", Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			given, err := parseTags(tags)
			if err != nil {
				return err
			}
			var q attest.Query
			if has != "" {
				if q, err = attest.ParseQuery(has); err != nil {
					return usageError{fmt.Errorf("--has: %w", err)}
				}
			}
			filter := service.ImageFilter(family, label, role, given)
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				ims, err := t.cloud.FindImages(ctx, filter)
				if err != nil {
					return err
				}
				if has != "" {
					return a.listHas(ctx, t, ims, q)
				}
				return printList(a, ims, "ID\tNAME\tARCH\tAPPVERSION\tROLE\tCHANNEL\tCREATED", func(im *plugin.Image) []string {
					return []string{im.ID, im.Name, im.Architecture, im.Tags["appversion"], im.Tags[channels.TagRole], im.Tags[channels.TagChannel], age(im.CreatedAt)}
				})
			})
		},
	}
	list.Flags().StringVar(&family, "family", "", "only this family")
	list.Flags().StringVar(&label, "label", "", "only images carrying this channel label")
	list.Flags().StringVar(&role, "role", "", "only foundation, base or app images")
	list.Flags().StringArrayVar(&tags, "tag", nil, "only images with this tag KEY=VALUE (repeatable)")
	list.Flags().StringVar(&has, "has", "", "only images whose stored SBOM lists this package: NAME, NAME=VERSION, NAME=3.0.x, NAME>=3.0,<3.1 (a row per matching package)")
	return list
}

func (a *app) imagesShowCommand() *cobra.Command {
	var showLineage bool
	show := &cobra.Command{
		Use: "show IMAGE", Short: "Show an image (by id, name or FAMILY:LABEL) with its tags", Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				im, err := service.Find(ctx, t.cloud, args[0])
				if err != nil {
					return err
				}
				if showLineage {
					chain := service.Lineage(ctx, t.cloud, im)
					return a.print(chain, func() { a.printLineage(chain) })
				}
				return a.print(im, func() { a.printImage(im) })
			})
		},
	}
	show.Flags().BoolVar(&showLineage, "lineage", false, "print the image's ancestor chain (foundation -> base -> app)")
	return show
}

func (a *app) printImage(im *plugin.Image) {
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
	for _, k := range slices.Sorted(maps.Keys(im.Tags)) {
		fmt.Fprintf(a.stdout, "  %s = %s\n", k, im.Tags[k])
	}
}

func (a *app) printLineage(chain []service.LineageEntry) {
	var rows [][]string
	for i, e := range chain {
		name := e.Name
		if e.Gone {
			name = "(deregistered)"
		}
		arrow := "  "
		if i > 0 {
			arrow = "->"
		}
		rows = append(rows, []string{arrow, e.ID, name, e.Role, e.Channel})
	}
	a.table("\tID\tNAME\tROLE\tCHANNEL", rows)
}

func (a *app) imagesRmCommand() *cobra.Command {
	var keepSnaps bool
	rm := &cobra.Command{
		Use: "rm IMAGE...", Short: "Deregister images and delete their snapshots and stored SBOMs and provenance", Args: a.args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				docs, err := service.OpenAttest(t.cfg, t.name)
				if err != nil {
					return err
				}
				defer docs.Close()
				var errs []error
				for _, ref := range args {
					r, err := service.RemoveImage(ctx, t.cloud, docs, ref, keepSnaps)
					if r.Image != "" {
						fmt.Fprintln(a.stdout, "deregistered", r.Image)
					}
					for _, s := range r.Snapshots {
						fmt.Fprintln(a.stdout, "deleted", s)
					}
					if err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	rm.Flags().BoolVar(&keepSnaps, "keep-snapshots", false, "keep the image's snapshots")
	return rm
}

func (a *app) imagesImportCommand() *cobra.Command {
	var imp plugin.ImportRequest
	var tags []string
	var role string
	var attestIt bool
	imp.Architecture, imp.VirtualizationType = "x86_64", "hvm"
	cmd := &cobra.Command{
		Use:   "import NAME FILE.img",
		Short: "Register a raw disk image (whole-device filesystem or partitioned) as an image",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			imp.Name = args[0]
			if imp.Name == "" || len(imp.Name) > 128 || strings.ContainsAny(imp.Name, " \t\n") {
				return usagef("image name %q: 1 to 128 characters, no spaces", imp.Name)
			}
			switch role {
			case channels.RoleFoundation, channels.RoleBase, channels.RoleApp:
			default:
				return usagef("--role %q: foundation, base or app", role)
			}
			given, err := parseTags(tags)
			if err != nil {
				return err
			}
			imp.Tags = plugin.Tags{channels.TagRole: role, channels.TagFamily: imp.Name}
			for k, v := range given {
				imp.Tags[k] = v
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				c, err := capability[plugin.Importer](t, "import of raw disk files")
				if err != nil {
					return err
				}
				im, err := c.Import(ctx, args[1], imp)
				if err != nil {
					return err
				}
				if attestIt {
					if err := a.attestImport(ctx, t, im, args[1]); err != nil {
						return err
					}
				}
				return a.print(im, func() { fmt.Fprintln(a.stdout, im.ID) })
			})
		},
	}
	cmd.Flags().StringVar(&imp.Architecture, "arch", "x86_64", "architecture of the image")
	cmd.Flags().StringVar(&imp.VirtualizationType, "vm-type", "hvm", "virtualization type")
	cmd.Flags().StringVar(&imp.Description, "description", "", "description")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	cmd.Flags().BoolVar(&attestIt, "attest", false, "also write the image's SBOMs (its packages read from its disk) and a signed provenance naming the file; a lineage walk ends at it")
	cmd.Flags().StringVar(&role, "role", channels.RoleFoundation, "role: foundation (a pristine OS; bakes on it make base images), base or app")
	return cmd
}

func (a *app) promoteCommand() *cobra.Command {
	var label string
	cmd := &cobra.Command{
		Use:   "promote IMAGE --label candidate|release",
		Short: "Move a base image to the candidate or release channel of its family (the last release becomes previous)",
		Args:  a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if label == "" {
				return usagef("give --label candidate or --label release")
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				im, err := service.Find(ctx, t.cloud, args[0])
				if err != nil {
					return err
				}
				changes, err := channels.Promote(ctx, t.cloud, im, label, t.cfg.LockDir)
				if err != nil {
					return err
				}
				return a.print(map[string]any{"image": im.ID, "label": label, "changes": changes}, func() {
					for _, ch := range changes {
						fmt.Fprintln(a.stdout, ch)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "candidate or release")
	return cmd
}

func (a *app) diffCommand() *cobra.Command {
	var files bool
	var ignore []string
	cmd := &cobra.Command{
		Use:   "diff IMAGE_A IMAGE_B",
		Short: "Show the packages added, removed, upgraded and downgraded from A to B, or with --files the files",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(ignore) > 0 && !files {
				return usagef("--ignore needs --files")
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				if files {
					return a.diffFiles(ctx, t, args[0], args[1], ignore)
				}
				m, err := capability[plugin.Manifests](t, "package manifests")
				if err != nil {
					return err
				}
				d, err := service.Diff(ctx, manifestSource{t.cloud, m}, args[0], args[1])
				if err != nil {
					return err
				}
				return a.print(d, func() { a.printDiff(d) })
			})
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "compare the images' root file trees (content, mode, owner, xattrs, symlinks); exit 1 when they differ")
	cmd.Flags().StringArrayVar(&ignore, "ignore", nil, "with --files, leave out paths matching this glob (/var/log/*; a matching directory with all under it); repeatable")
	return cmd
}

// diffFiles prints the differences of two images' file trees, one line
// (or JSON object) each, and exits 1 when there are any, 2 when it
// cannot compare them, as diff(1) does.
func (a *app) diffFiles(ctx context.Context, t *target, refA, refB string, ignore []string) error {
	disks, err := capability[plugin.DiskFiles](t, "disk files on this host to compare")
	var diffs []treediff.Diff
	if err == nil {
		diffs, err = service.DiffFiles(ctx, struct {
			plugin.ImageFinder
			plugin.DiskFiles
		}{t.cloud, disks}, refA, refB, treediff.Options{Ignore: ignore, Workers: runtime.NumCPU()})
	}
	if err != nil { // trouble exits 2, as diff(1)'s does: 1 means "they differ"
		fmt.Fprintln(a.stderr, "aminate: error:", err)
		return service.ExitError{Code: 2}
	}
	if diffs == nil {
		diffs = []treediff.Diff{}
	}
	if err := a.print(diffs, func() {
		for _, d := range diffs {
			fmt.Fprintln(a.stdout, d)
		}
	}); err != nil {
		return err
	}
	if len(diffs) > 0 {
		return service.ExitError{Code: 1}
	}
	return nil
}

func (a *app) exportCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export IMAGE FILE",
		Short: "Write an image's root disk to FILE as raw, qcow2, vmdk or vhdx (qemu-img), to run it in a VM elsewhere",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[1]
			f, ok := service.ExportFormat(format, out)
			if !ok {
				return usagef("--format %q: raw, qcow2, vmdk or vhdx", f)
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				disks, err := capability[plugin.DiskFiles](t, "disk files on this host to export")
				if err != nil {
					return err
				}
				im, err := service.ExportImage(ctx, t.cloud, disks, args[0], f, out, a.logger(false))
				if err != nil {
					return err
				}
				return a.print(map[string]string{"image": im.ID, "format": f, "file": out}, func() {
					fmt.Fprintf(a.stdout, "%s written to %s (%s)\n", im.ID, out, f)
				})
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "raw, qcow2, vmdk or vhdx (default: from FILE's extension, else raw)")
	return cmd
}

// manifestSource is a cloud with its package manifests, as a diff reads them.
type manifestSource struct {
	plugin.Cloud
	plugin.Manifests
}

func (a *app) printDiff(d service.ManifestDiff) {
	for _, p := range d.Added {
		fmt.Fprintf(a.stdout, "+ %s %s (%s)\n", p.Name, p.To, p.Arch)
	}
	for _, p := range d.Removed {
		fmt.Fprintf(a.stdout, "- %s %s (%s)\n", p.Name, p.From, p.Arch)
	}
	for _, p := range d.Upgraded {
		fmt.Fprintf(a.stdout, "^ %s %s -> %s (upgraded)\n", p.Name, p.From, p.To)
	}
	for _, p := range d.Downgraded {
		fmt.Fprintf(a.stdout, "v %s %s -> %s (downgraded)\n", p.Name, p.From, p.To)
	}
	fmt.Fprintf(a.stdout, "%d added, %d removed, %d upgraded, %d downgraded\n", len(d.Added), len(d.Removed), len(d.Upgraded), len(d.Downgraded))
}

// attestImport attests an imported image; when it cannot, the image is
// removed again, so a failed import --attest leaves nothing.
func (a *app) attestImport(ctx context.Context, t *target, im *plugin.Image, source string) error {
	err := service.AttestImport(ctx, t.cfg, t.name, t.cloud, im, source, a.logger(t.cfg.Context.Debug))
	if err == nil {
		return nil
	}
	if _, rerr := service.RemoveImage(context.WithoutCancel(ctx), t.cloud, nil, im.ID, false); rerr != nil {
		return errors.Join(err, fmt.Errorf("remove the imported image %s: %w", im.ID, rerr))
	}
	return fmt.Errorf("attest the imported image (removed again): %w", err)
}
