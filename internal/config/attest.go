package config

import (
	"os"
	"path/filepath"
	"strings"
)

// Attest says how an image's provenance is signed and checked (issue 21).
// Every image a bake or a foundation makes gets SBOMs and a provenance
// signed with SigningKey; aminate verify checks signatures against
// TrustFile.
type Attest struct {
	// SigningKey is a PEM key file (PKCS#8, ed25519 or ECDSA P-256),
	// "kms:KEY" for an AWS KMS key (id, ARN or alias), or "" for this
	// host's own key: STATE/keys/signing.pem, made (ed25519) with the
	// trust file the first time an image is signed.
	SigningKey string `yaml:"signing_key"`
	// TrustFile lists the signers aminate verify accepts ("":
	// STATE/keys/trust.yml, to which this host's own key is added).
	TrustFile string `yaml:"trust_file"`
	// BuilderID is the absolute URI provenance names as the builder
	// ("": urn:aminator:host:HOSTNAME).
	BuilderID string `yaml:"builder_id"`
	// S3Bucket, when set, keeps an EC2 image's documents in this bucket
	// too, under S3Prefix + IMAGE-ID/, referenced from the image's sbom
	// and provenance tags; without it an EC2 image is tagged with the
	// documents' SHA-256 only.
	S3Bucket string `yaml:"s3_bucket"`
	S3Prefix string `yaml:"s3_prefix"`
}

// DefaultS3Prefix is attest.s3_prefix's default.
const DefaultS3Prefix = "aminator/attest/"

// Prefix is the key prefix of the documents in S3Bucket.
func (a Attest) Prefix() string {
	if a.S3Prefix == "" {
		return DefaultS3Prefix
	}
	return a.S3Prefix
}

// KMSPrefix marks a SigningKey that names an AWS KMS key.
const KMSPrefix = "kms:"

// KeyPath is the signing key's file, "" for a KMS key.
func (a Attest) KeyPath(stateDir string) string {
	switch {
	case strings.HasPrefix(a.SigningKey, KMSPrefix):
		return ""
	case a.SigningKey == "":
		return filepath.Join(stateDir, "keys", "signing.pem")
	}
	return a.SigningKey
}

// Trust is the trust file's path.
func (a Attest) Trust(stateDir string) string {
	if a.TrustFile == "" {
		return filepath.Join(stateDir, "keys", "trust.yml")
	}
	return a.TrustFile
}

// Builder is the builder id provenance names.
func (a Attest) Builder() string {
	if a.BuilderID != "" {
		return a.BuilderID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "urn:aminator:host:" + host
}
