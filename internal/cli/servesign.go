package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/worker"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/service"
)

// attest makes serve's --signing-key and --trust-file the configuration's
// attest settings, key files as absolute paths (the workers' children
// get them as they are).
func (o serveOptions) attest(cfg *config.Config) error {
	if o.signingKey != "" {
		cfg.Attest.SigningKey = o.signingKey
	}
	if o.trustFile != "" {
		cfg.Attest.TrustFile = o.trustFile
	}
	a := &cfg.Attest
	if a.SigningKey != "" && !strings.HasPrefix(a.SigningKey, config.KMSPrefix) {
		p, err := filepath.Abs(a.SigningKey)
		if err != nil {
			return fmt.Errorf("--signing-key: %w", err)
		}
		a.SigningKey = p
	}
	if a.TrustFile != "" {
		p, err := filepath.Abs(a.TrustFile)
		if err != nil {
			return fmt.Errorf("--trust-file: %w", err)
		}
		a.TrustFile = p
	}
	return nil
}

// signingKeyName is how serve's log names the key its workers sign with.
func signingKeyName(cfg *config.Config) string {
	if cfg.Attest.SigningKey == "" {
		return "this host's own key " + cfg.Attest.KeyPath(cfg.StateDir)
	}
	return cfg.Attest.SigningKey
}

// verifier is how serve's workers verify each image a bake made: as
// aminate verify does, against the bakery's trust file.
func verifier(cfg *config.Config) worker.Verifier {
	return func(ctx context.Context, region, environment, image string) *bakery.Provenance {
		v, err := service.VerifyIn(ctx, cfg, region, environment, cfg.Attest.TrustFile, image)
		if err != nil {
			return &bakery.Provenance{Error: "not verified: " + err.Error()}
		}
		return provenanceOf(v)
	}
}

// provenanceOf is a verification as a bake's record keeps it.
func provenanceOf(v *service.Verification) *bakery.Provenance {
	p := &bakery.Provenance{LineageOK: v.OK}
	for _, x := range v.Verdicts {
		p.Lineage = append(p.Lineage, bakery.Verdict{Image: x.ImageID, OK: x.OK, Signer: x.Signer, KeyID: x.KeyID, Package: x.Package, Error: x.Error})
	}
	if len(v.Verdicts) > 0 {
		me := v.Verdicts[0]
		p.OK, p.Signer, p.KeyID, p.Error = me.OK, me.Signer, me.KeyID, me.Error
	}
	return p
}
