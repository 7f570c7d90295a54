package s3bundle

import (
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The EC2 certificates whose public keys let EC2 decrypt a bundle, as they
// ship with the EC2 AMI tools 1.5.7 (etc/ec2/amitools/cert-ec2*.pem): one
// for the standard partition, one for GovCloud, one for the China regions.
// They are public; EC2 does not look at their dates.
//
//go:embed certs/*.pem
var certs embed.FS

// EC2Certificate is EC2's certificate for region's partition.
func EC2Certificate(region string) (*x509.Certificate, error) {
	file := "certs/ec2.pem"
	switch {
	case strings.HasPrefix(region, "us-gov-"):
		file = "certs/ec2-gov.pem"
	case strings.HasPrefix(region, "cn-"):
		file = "certs/ec2-cn.pem"
	}
	b, err := certs.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCertificate(b)
}

// ParseCertificate reads a PEM certificate with an RSA key.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, errors.New("certificate: the key is not RSA (the bundle format needs RSA)")
	}
	return c, nil
}

// LoadCertificate reads a PEM certificate file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	c, err := ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadPrivateKey reads a PEM RSA private key (PKCS#1 or PKCS#8). Its
// errors never quote the file's content.
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("private key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key %s: not an RSA key in PKCS#1 or PKCS#8 form", path)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key %s: not an RSA key", path)
	}
	return rk, nil
}

// LoadIdentity reads the user's certificate and private key, and EC2's
// certificate when ec2Cert names a file (else the partition's built-in one
// is used), into o.
func (o *Options) LoadIdentity(cert, key, ec2Cert string) error {
	var err error
	if cert == "" || key == "" {
		return errors.New("a bundle needs the user's certificate and private key (--cert, --privatekey)")
	}
	if o.UserCert, err = LoadCertificate(cert); err != nil {
		return err
	}
	if o.Key, err = LoadPrivateKey(key); err != nil {
		return err
	}
	if ec2Cert != "" {
		if o.EC2Cert, err = LoadCertificate(ec2Cert); err != nil {
			return err
		}
	}
	return nil
}

// SafeName turns an image name into a bundle name: characters a bundle
// name cannot hold become '_', and it is cut to 100 bytes.
func SafeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("().,_+-", c) >= 0) {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	out := strings.ReplaceAll(string(b), "..", "__")
	if out == "" || out[0] == '.' || out[0] == ',' {
		out = "_" + out[min(1, len(out)):]
	}
	return out
}
