package provenance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Trust is the signers a verifier accepts. Its file is YAML:
//
//	signers:
//	  - name: bakery-prod            # shown in verdicts
//	    public_key: |                # PEM "PUBLIC KEY": ed25519 or ECDSA P-256 (a KMS key's too)
//	      -----BEGIN PUBLIC KEY-----
//	      ...
//	    not_before: 2026-01-01T00:00:00Z   # optional
//	    not_after: 2027-01-01T00:00:00Z    # optional
//
// A signer is valid from not_before to not_after inclusive; no bound is no
// limit.
type Trust struct {
	Signers []TrustedSigner
}

// TrustedSigner is one signer of a Trust.
type TrustedSigner struct {
	Name      string
	KeyID     string
	Public    crypto.PublicKey
	NotBefore time.Time // zero: no bound
	NotAfter  time.Time
}

type trustFile struct {
	Signers []struct {
		Name      string    `yaml:"name"`
		PublicKey string    `yaml:"public_key"`
		NotBefore time.Time `yaml:"not_before"`
		NotAfter  time.Time `yaml:"not_after"`
	} `yaml:"signers"`
}

// LoadTrust reads a trust file.
func LoadTrust(path string) (*Trust, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	t, err := ParseTrust(b)
	if err != nil {
		return nil, fmt.Errorf("trust file %s: %w", path, err)
	}
	return t, nil
}

// ParseTrust reads a trust file's contents.
func ParseTrust(b []byte) (*Trust, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f trustFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(f.Signers) == 0 {
		return nil, fmt.Errorf("no signers listed")
	}
	t := &Trust{}
	for i, s := range f.Signers {
		if s.Name == "" {
			return nil, fmt.Errorf("signer %d has no name", i+1)
		}
		pub, err := parsePublicKey([]byte(s.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("signer %s: %w", s.Name, err)
		}
		if err := t.Add(s.Name, pub, s.NotBefore, s.NotAfter); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Add trusts a signer from notBefore to notAfter (a zero time: no bound).
func (t *Trust) Add(name string, pub crypto.PublicKey, notBefore, notAfter time.Time) error {
	if !notBefore.IsZero() && !notAfter.IsZero() && notAfter.Before(notBefore) {
		return fmt.Errorf("signer %s: not_after %s is before not_before %s", name, notAfter, notBefore)
	}
	id, err := KeyID(pub)
	if err != nil {
		return fmt.Errorf("signer %s: %w", name, err)
	}
	for _, s := range t.Signers {
		if s.KeyID == id {
			return fmt.Errorf("signers %s and %s have the same key %s", s.Name, name, id)
		}
	}
	t.Signers = append(t.Signers, TrustedSigner{Name: name, KeyID: id, Public: pub, NotBefore: notBefore, NotAfter: notAfter})
	return nil
}

func parsePublicKey(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf(`public_key is not a PEM "PUBLIC KEY" block`)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: only P-256 is accepted", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("a %T key: only ed25519 and ECDSA P-256 are accepted", pub)
	}
	return pub, nil
}

// validAt says why s is not valid at now, or "" when it is.
func (s TrustedSigner) validAt(now time.Time) string {
	switch {
	case !s.NotBefore.IsZero() && now.Before(s.NotBefore):
		return fmt.Sprintf("not valid before %s", s.NotBefore.UTC().Format(time.RFC3339))
	case !s.NotAfter.IsZero() && now.After(s.NotAfter):
		return fmt.Sprintf("expired at %s", s.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}
