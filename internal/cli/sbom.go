package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/service"
)

func (a *app) imagesSBOMCommand() *cobra.Command {
	var format, file string
	cmd := &cobra.Command{
		Use:   "sbom IMAGE",
		Short: "Print an image's stored SBOM (SPDX 2.3 or CycloneDX 1.6 JSON), its digest checked",
		Long: `Print the SBOM stored with the image (by id, name or FAMILY:LABEL), in
SPDX 2.3 JSON (--format spdx, the default) or CycloneDX 1.6 JSON, or write
it to FILE with -o. The document's SHA-256 is checked against the one
recorded when it was stored: a changed document is an error, not printed.
An image made before aminator wrote SBOMs, or imported, has none.`,
		Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != attest.KindSPDX && format != attest.KindCycloneDX {
				return usagef("--format %q: spdx or cyclonedx", format)
			}
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				im, err := service.Find(ctx, t.cloud, args[0])
				if err != nil {
					return err
				}
				s, err := service.OpenAttest(t.cfg, t.name)
				if err != nil {
					return err
				}
				defer s.Close()
				d, err := service.SBOM(ctx, s, im.ID, format)
				if err != nil {
					return err
				}
				return a.writeSBOM(im.ID, format, file, d)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", attest.KindSPDX, "spdx or cyclonedx")
	cmd.Flags().StringVarP(&file, "file", "o", "", "write the document to FILE instead of standard output")
	return cmd
}

// writeSBOM writes the document to standard output (it is JSON already,
// so --output json prints it the same) or to file, saying so.
func (a *app) writeSBOM(image, format, file string, d attest.Doc) error {
	if file == "" {
		_, err := a.stdout.Write(d.Body)
		return err
	}
	if err := os.WriteFile(file, d.Body, 0o644); err != nil {
		return fmt.Errorf("write the SBOM of %s: %w", image, err)
	}
	out := map[string]string{"image": image, "format": format, "media_type": d.MediaType, "sha256": d.SHA256, "file": file}
	return a.print(out, func() {
		fmt.Fprintf(a.stdout, "%s: %s SBOM written to %s (sha256 %s)\n", image, format, file, d.SHA256)
	})
}

// hasRow is one image `images list --has` prints, with one matching
// package.
type hasRow struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Arch        string `json:"arch"`
	Package     string `json:"package"`
	Version     string `json:"version"`
	PackageArch string `json:"package_arch"`
	Created     string `json:"created"`
}

// listHas prints the images of ims (the cloud's, filtered, newest first)
// whose stored inventory has a package q selects, one row for each such
// package.
func (a *app) listHas(ctx context.Context, t *target, ims []*plugin.Image, q attest.Query) error {
	s, err := service.OpenAttest(t.cfg, t.name)
	if err != nil {
		return err
	}
	defer s.Close()
	ms, err := s.Has(ctx, q)
	if err != nil {
		return err
	}
	by := map[string][]attest.Match{}
	for _, m := range ms {
		by[m.ImageID] = append(by[m.ImageID], m)
	}
	var rows []hasRow
	for _, im := range ims {
		for _, m := range by[im.ID] {
			rows = append(rows, hasRow{ID: im.ID, Name: im.Name, Arch: im.Architecture, Package: m.Name, Version: m.Version, PackageArch: m.Arch, Created: age(im.CreatedAt)})
		}
	}
	return printList(a, rows, "ID\tNAME\tARCH\tPACKAGE\tVERSION\tCREATED", func(r hasRow) []string {
		return []string{r.ID, r.Name, r.Arch, r.Package, r.Version + " (" + r.PackageArch + ")", r.Created}
	})
}
