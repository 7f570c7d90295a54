package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/cloud/local"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/pkgmgr"
	"github.com/aminator-go/aminator/internal/plugin"
)

// lineageEntry is one image of a lineage.
type lineageEntry struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Role    string `json:"role,omitempty"`
	Channel string `json:"channel,omitempty"`
	Gone    bool   `json:"deregistered,omitempty"`
}

func lineage(ctx context.Context, c plugin.Cloud, im *plugin.Image) []lineageEntry {
	var out []lineageEntry
	for _, id := range channels.Lineage(im) {
		a, err := c.Image(ctx, plugin.ImageQuery{ID: id})
		if err != nil {
			out = append(out, lineageEntry{ID: id, Gone: true})
			continue
		}
		out = append(out, lineageEntry{ID: a.ID, Name: a.Name, Role: a.Tags[channels.TagRole], Channel: a.Tags[channels.TagChannel]})
	}
	return append(out, lineageEntry{ID: im.ID, Name: im.Name, Role: im.Tags[channels.TagRole], Channel: im.Tags[channels.TagChannel]})
}

func (a *app) printLineage(chain []lineageEntry) {
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
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			return a.withCloud(cmd, func(ctx context.Context, c plugin.Cloud) error {
				im, err := findImage(ctx, c, args[0])
				if err != nil {
					return err
				}
				changes, err := channels.Promote(ctx, c, im, label, cfg.LockDir)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(map[string]any{"image": im.ID, "label": label, "changes": changes})
				}
				for _, ch := range changes {
					fmt.Fprintln(a.stdout, ch)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "candidate or release")
	return cmd
}

// pkgChange is one line of a manifest diff.
type pkgChange struct {
	Name string `json:"name"`
	Arch string `json:"arch"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

type manifestDiff struct {
	Added      []pkgChange `json:"added"`
	Removed    []pkgChange `json:"removed"`
	Upgraded   []pkgChange `json:"upgraded"`
	Downgraded []pkgChange `json:"downgraded"`
}

// diffManifests compares two manifests, ordering versions with compare
// (the package format's order: dpkg's or rpm's).
func diffManifests(a, b []plugin.Package, compare func(a, b string) int) manifestDiff {
	key := func(p plugin.Package) string { return p.Name + ":" + p.Arch }
	am, bm := map[string]plugin.Package{}, map[string]plugin.Package{}
	for _, p := range a {
		am[key(p)] = p
	}
	for _, p := range b {
		bm[key(p)] = p
	}
	d := manifestDiff{Added: []pkgChange{}, Removed: []pkgChange{}, Upgraded: []pkgChange{}, Downgraded: []pkgChange{}}
	for k, p := range bm {
		q, ok := am[k]
		switch {
		case !ok:
			d.Added = append(d.Added, pkgChange{Name: p.Name, Arch: p.Arch, To: p.Version})
		case compare(q.Version, p.Version) < 0:
			d.Upgraded = append(d.Upgraded, pkgChange{Name: p.Name, Arch: p.Arch, From: q.Version, To: p.Version})
		case compare(q.Version, p.Version) > 0:
			d.Downgraded = append(d.Downgraded, pkgChange{Name: p.Name, Arch: p.Arch, From: q.Version, To: p.Version})
		}
	}
	for k, q := range am {
		if _, ok := bm[k]; !ok {
			d.Removed = append(d.Removed, pkgChange{Name: q.Name, Arch: q.Arch, From: q.Version})
		}
	}
	for _, l := range [][]pkgChange{d.Added, d.Removed, d.Upgraded, d.Downgraded} {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return d
}

func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff IMAGE_A IMAGE_B",
		Short: "Show the packages added, removed, upgraded and downgraded from A to B",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				var ms [2][]plugin.Package
				for i, ref := range args {
					im, err := findImage(ctx, c, ref)
					if err != nil {
						return err
					}
					if ms[i], err = c.Manifest(ctx, im.ID); err != nil {
						return err
					}
					if len(ms[i]) == 0 {
						return fmt.Errorf("image %s has no package manifest", im.ID)
					}
				}
				// The manifests say which package manager listed them.
				format := pkgmgr.FormatOf(append(append([]plugin.Package(nil), ms[0]...), ms[1]...))
				d := diffManifests(ms[0], ms[1], format.Compare)
				if a.output == "json" {
					return a.printJSON(d)
				}
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
				return nil
			})
		},
	}
}

var exportFormats = map[string]string{"raw": "raw", "img": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx"}

func (a *app) exportCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export IMAGE FILE",
		Short: "Write an image's root disk to FILE as raw, qcow2, vmdk or vhdx (qemu-img), to run it in a VM elsewhere",
		Args:  a.args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[1]
			if format == "" {
				format = exportFormats[strings.TrimPrefix(filepath.Ext(out), ".")]
				if format == "" {
					format = "raw"
				}
			}
			if _, ok := exportFormats[format]; !ok || format == "img" {
				return usagef("--format %q: raw, qcow2, vmdk or vhdx", format)
			}
			return a.withLocal(cmd, func(ctx context.Context, c *local.Cloud) error {
				im, err := findImage(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := exportImage(ctx, c, im, format, out, a); err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(map[string]string{"image": im.ID, "format": format, "file": out})
				}
				fmt.Fprintf(a.stdout, "%s written to %s (%s)\n", im.ID, out, format)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "raw, qcow2, vmdk or vhdx (default: from FILE's extension, else raw)")
	return cmd
}

func exportImage(ctx context.Context, c *local.Cloud, im *plugin.Image, format, out string, a *app) error {
	root := im.Root()
	if root == nil || root.SnapshotID == "" {
		return fmt.Errorf("image %s has no root snapshot", im.ID)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if format == "raw" {
		return c.Store().Restore(ctx, root.SnapshotID, abs)
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return fmt.Errorf("export to %s needs qemu-img (Debian: apt-get install qemu-utils): %w", format, err)
	}
	tmpRaw := abs + ".raw.tmp"
	tmpOut := abs + ".tmp"
	defer os.Remove(tmpRaw)
	defer os.Remove(tmpOut)
	if err := c.Store().Restore(ctx, root.SnapshotID, tmpRaw); err != nil {
		return err
	}
	if err := logging.Host(ctx, a.logger(false), "qemu-img", "convert", "-f", "raw", "-O", format, tmpRaw, tmpOut); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmpOut, abs); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
