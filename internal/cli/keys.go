package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/aminator-go/aminator/internal/image/provenance"
)

// keysCommand manages the keys that sign images' provenance.
func (a *app) keysCommand() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Signing keys for images' provenance (see docs/provenance.md)"}
	keys.AddCommand(a.keysCreateCommand())
	return keys
}

// keyReport is what keys create says of a key.
type keyReport struct {
	File      string `json:"file"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	Trust     string `json:"trust_file"`
	Signer    string `json:"signer"`
}

func (a *app) keysCreateCommand() *cobra.Command {
	var alg, out, name string
	c := &cobra.Command{
		Use:   "create",
		Short: "Make a signing key (never over an existing one) and trust it",
		Long: `create makes a private key for signing images' provenance, readable by its
owner alone, at --out (default: attest.signing_key, or this host's key
STATE/keys/signing.pem), and adds its public key to the trust file
(attest.trust_file, default STATE/keys/trust.yml) under --name. It prints
the key id and the public key, to give to whoever verifies the images.`,
		Args: a.args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if out == "" {
				if out = cfg.Attest.KeyPath(cfg.StateDir); out == "" {
					return usagef("attest.signing_key names a KMS key: give --out FILE")
				}
			}
			if name == "" {
				host, _ := os.Hostname()
				name = "aminator@" + host
			}
			s, err := provenance.CreateKey(out, alg)
			if err != nil {
				return err
			}
			trust := cfg.Attest.Trust(cfg.StateDir)
			if err := provenance.TrustKey(trust, name, s.Public()); err != nil {
				return fmt.Errorf("key %s made, but not trusted: %w", out, err)
			}
			id, _ := s.KeyID()
			pub, err := provenance.PublicKeyPEM(s.Public())
			if err != nil {
				return err
			}
			r := keyReport{File: out, KeyID: id, PublicKey: string(pub), Trust: trust, Signer: name}
			return a.print(r, func() {
				fmt.Fprintf(a.stdout, "key %s\nid %s\ntrusted as %s in %s\n%s", r.File, r.KeyID, r.Signer, r.Trust, r.PublicKey)
			})
		},
	}
	c.Flags().StringVar(&alg, "alg", provenance.Ed25519, "key algorithm: ed25519 or ecdsa-p256")
	c.Flags().StringVar(&out, "out", "", "the key file to make (default: attest.signing_key, or STATE/keys/signing.pem)")
	c.Flags().StringVar(&name, "name", "", "the signer's name in the trust file (default aminator@HOSTNAME)")
	return c
}
