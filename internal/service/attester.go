package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// MediaDSSE is a provenance envelope's media type.
const MediaDSSE = "application/vnd.dsse.envelope.v1+json"

// ToolVersion is the version provenance names: the one the build was
// given (cli.Version), else the module's, else the VCS revision.
func ToolVersion(given string) string {
	if given != "" && given != "dev" {
		return given
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev+" + s.Value[:12]
		}
	}
	return "dev"
}

// NewAttester opens the attestation store and the signing key of cfg: a
// KMS key, a key file, or this host's own key (made on first use and
// trusted in the trust file). The caller closes the returned store.
func NewAttester(ctx context.Context, cfg *config.Config, cloudName string, cloud plugin.Cloud, version string, log *slog.Logger) (*bake.Attester, *attest.Store, error) {
	signer, err := openSigner(ctx, cfg, cloud, log)
	if err != nil {
		return nil, nil, err
	}
	st, err := OpenAttest(cfg, cloudName)
	if err != nil {
		return nil, nil, err
	}
	a := &bake.Attester{Store: attestStore{st}, Signer: signer, BuilderID: cfg.Attest.Builder(),
		Tool: "aminator", Version: ToolVersion(version)}
	if p := newEC2Docs(cfg.Attest, cloud); p != nil {
		a.Publisher = p
	}
	return a, st, nil
}

func openSigner(ctx context.Context, cfg *config.Config, cloud plugin.Cloud, log *slog.Logger) (provenance.Signer, error) {
	a := cfg.Attest
	if key, ok := strings.CutPrefix(a.SigningKey, config.KMSPrefix); ok {
		var awsCfg aws.Config
		if c, ok := cloud.(interface{ AWSConfig() aws.Config }); ok {
			awsCfg = c.AWSConfig()
		} else {
			var err error
			if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
				return nil, fmt.Errorf("AWS configuration for the KMS signing key: %w", err)
			}
		}
		return provenance.NewKMSSigner(ctx, kms.NewFromConfig(awsCfg), key)
	}
	if a.SigningKey != "" {
		return provenance.LoadKeyFile(a.SigningKey)
	}
	host, _ := os.Hostname()
	s, made, err := provenance.HostKey(a.KeyPath(cfg.StateDir), a.Trust(cfg.StateDir), "aminator@"+host)
	if made {
		log.Info("made this host's signing key and trusted it", "key", a.KeyPath(cfg.StateDir), "trust_file", a.Trust(cfg.StateDir))
	}
	return s, err
}

// attestStore keeps a bake's documents in an attest.Store.
type attestStore struct{ st *attest.Store }

func (s attestStore) Keep(ctx context.Context, id string, inv *sbom.Inventory, d bake.Documents) error {
	return s.st.Put(ctx, id, inv,
		attest.Doc{Kind: attest.KindSPDX, MediaType: bake.MediaSPDX, Body: d.SPDX},
		attest.Doc{Kind: attest.KindCycloneDX, MediaType: bake.MediaCycloneDX, Body: d.CycloneDX},
		attest.Doc{Kind: attest.KindProvenance, MediaType: MediaDSSE, Body: d.Provenance})
}

func (s attestStore) Forget(ctx context.Context, id string) error { return s.st.Delete(ctx, id) }

// Licences reads the licences the image's SPDX document declares, by
// purl; an image with no SBOM has none to give.
func (s attestStore) Licences(ctx context.Context, id string) (map[string]string, error) {
	doc, err := s.st.Get(ctx, id, attest.KindSPDX)
	if err != nil {
		return nil, err
	}
	var d struct {
		Packages []struct {
			License string `json:"licenseDeclared"`
			Refs    []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc.Body, &d); err != nil {
		return nil, fmt.Errorf("SPDX document of %s: %w", id, err)
	}
	out := map[string]string{}
	for _, p := range d.Packages {
		for _, r := range p.Refs {
			if r.Type == "purl" && p.License != "" {
				out[r.Locator] = p.License
			}
		}
	}
	return out, nil
}

// SigningKeyID opens cfg's signing key, making this host's own (and
// trusting it) if that is the one and it does not exist yet, and returns
// its key id: what aminate serve logs at start, before its workers'
// children sign with it.
func SigningKeyID(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, error) {
	s, err := openSigner(ctx, cfg, nil, log)
	if err != nil {
		return "", fmt.Errorf("the signing key: %w", err)
	}
	return s.KeyID()
}
