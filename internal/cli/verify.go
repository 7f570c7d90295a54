package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/service"
)

// verifyCommand checks an image's provenance and its lineage's.
func (a *app) verifyCommand() *cobra.Command {
	var trustFile string
	c := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check an image's signed provenance, its disk, its SBOMs and its ancestors'",
		Long: `verify checks that IMAGE's provenance is signed by a signer the trust file
lists (--trust, default attest.trust_file or STATE/keys/trust.yml) and
valid now, that the disk's digest recomputed from every byte of the
image's snapshot and the SBOMs' SHA-256 are the ones it names, and then
walks the lineage: each ancestor's provenance in turn, down to the
foundation. On EC2 the disk is read through the EBS direct APIs, and an
image's documents this host's store lacks are fetched from S3 through the
image's sbom and provenance tags, each checked against the tag's SHA-256.
It prints one verdict per image and exits 1 unless all pass.`,
		Args: a.args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCloud(cmd, func(ctx context.Context, t *target) error {
				if trustFile == "" {
					trustFile = t.cfg.Attest.Trust(t.cfg.StateDir)
				}
				trust, err := provenance.LoadTrust(trustFile)
				if err != nil {
					return err
				}
				st, err := service.OpenAttest(t.cfg, t.name)
				if err != nil {
					return err
				}
				defer st.Close()
				v, err := service.VerifyImage(ctx, t.cloud, st, service.Remote(t.cfg.Attest, t.cloud), trust, args[0], time.Now())
				if err != nil {
					return err
				}
				if err := a.print(v, func() { a.printVerification(v) }); err != nil {
					return err
				}
				if !v.OK {
					return fmt.Errorf("image %s: verification failed", v.Image)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&trustFile, "trust", "", "the trust file (default: attest.trust_file, or STATE/keys/trust.yml)")
	return c
}

func (a *app) printVerification(v *service.Verification) {
	for _, x := range v.Verdicts {
		if !x.OK {
			fmt.Fprintf(a.stdout, "FAIL %s: %s\n", x.ImageID, x.Error)
			continue
		}
		what := x.BuildType
		if x.Package != "" {
			what = x.Package + " on " + x.Base
		}
		fmt.Fprintf(a.stdout, "ok   %s: %s, signed by %s (%s), bake %s at %s\n", x.ImageID, what, x.Signer, x.KeyID, x.BakeID, x.Finished)
	}
}
