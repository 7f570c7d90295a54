package provenance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// kmsRawLimit is the largest message kms:Sign takes as RAW; a longer one
// is sent as its SHA-256 (MessageType DIGEST).
const kmsRawLimit = 4096

// KMSSigner signs with an AWS KMS key (ECC_NIST_P256, SIGN_VERIFY), which
// never leaves KMS.
type KMSSigner struct {
	client *kms.Client
	key    string
	pub    crypto.PublicKey
	keyID  string
}

// NewKMSSigner reads the KMS key's public key (kms:GetPublicKey) and
// checks that it signs ECDSA_SHA_256 on P-256.
func NewKMSSigner(ctx context.Context, client *kms.Client, key string) (*KMSSigner, error) {
	out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: get public key: %w", key, err)
	}
	if !slices.Contains(out.SigningAlgorithms, types.SigningAlgorithmSpecEcdsaSha256) {
		return nil, fmt.Errorf("KMS key %s (%s, %s) cannot sign ECDSA_SHA_256: an ECC_NIST_P256 SIGN_VERIFY key is needed", key, out.KeySpec, out.KeyUsage)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: parse public key: %w", key, err)
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("KMS key %s is a %T, not ECDSA P-256", key, pub)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &KMSSigner{client: client, key: key, pub: pub, keyID: id}, nil
}

// KeyID is the id of the KMS key's public key (see the function KeyID).
func (s *KMSSigner) KeyID() (string, error) { return s.keyID, nil }

// Public is the KMS key's public key, for a trust file.
func (s *KMSSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs data with kms:Sign, ECDSA_SHA_256: the data itself when KMS
// takes it (4096 bytes at most), else its SHA-256 as a DIGEST. Both sign
// the same thing, so one verifier checks either.
func (s *KMSSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	in := &kms.SignInput{KeyId: aws.String(s.key), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
		Message: data, MessageType: types.MessageTypeRaw}
	if len(data) > kmsRawLimit {
		sum := sha256.Sum256(data)
		in.Message, in.MessageType = sum[:], types.MessageTypeDigest
	}
	out, err := s.client.Sign(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("KMS key %s: sign: %w", s.key, err)
	}
	return out.Signature, nil
}
