package provenance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// The key algorithms a key file may hold.
const (
	Ed25519   = "ed25519"
	ECDSAP256 = "ecdsa-p256"
)

// Signer signs an envelope's pre-authentication encoding (DSSE's PAE) and
// names its key. It is go-securesystemslib's dsse.Signer.
type Signer interface {
	Sign(ctx context.Context, data []byte) ([]byte, error)
	KeyID() (string, error)
}

// KeyID is a public key's id: "sha256:" and the hex SHA-256 of its PKIX
// (SubjectPublicKeyInfo) DER encoding, the same for a key file and a KMS key.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// GenerateKey makes a private key of the algorithm (Ed25519 or ECDSAP256)
// as a PEM PKCS#8 block, for a key file.
func GenerateKey(alg string) ([]byte, error) {
	var key crypto.PrivateKey
	var err error
	switch alg {
	case Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("key algorithm %q: want %s or %s", alg, Ed25519, ECDSAP256)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", alg, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicKeyPEM is a public key as a PEM "PUBLIC KEY" block, as a trust
// file lists it.
func PublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeySigner signs with a private key from a key file.
type KeySigner struct {
	key   crypto.Signer
	keyID string
}

// LoadKeyFile reads a PEM PKCS#8 private key file.
func LoadKeyFile(path string) (*KeySigner, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	s, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return s, nil
}

// ParseKey reads a PEM PKCS#8 private key: ed25519 or ECDSA P-256.
func ParseKey(pemBytes []byte) (*KeySigner, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`not a PEM "PRIVATE KEY" (PKCS#8) block`)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
	}
	var signer crypto.Signer
	switch k := k.(type) {
	case ed25519.PrivateKey:
		signer = k
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: only P-256 is accepted", k.Curve.Params().Name)
		}
		signer = k
	default:
		return nil, fmt.Errorf("a %T key: only ed25519 and ECDSA P-256 are accepted", k)
	}
	id, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	return &KeySigner{key: signer, keyID: id}, nil
}

// KeyID is the key's id (see the function KeyID).
func (s *KeySigner) KeyID() (string, error) { return s.keyID, nil }

// Public is the key's public half.
func (s *KeySigner) Public() crypto.PublicKey { return s.key.Public() }

// Sign signs data: ed25519 over the data itself, ECDSA over its SHA-256
// with an ASN.1 DER signature (as KMS returns one).
func (s *KeySigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, data), nil
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(data)
		sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
		if err != nil {
			return nil, fmt.Errorf("ECDSA sign: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign", s.key)
}

// verifySig checks sig over data with pub, as KeySigner and KMS sign.
func verifySig(pub crypto.PublicKey, data, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, data, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(data)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	}
	return false
}
