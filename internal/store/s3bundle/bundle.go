// Package s3bundle writes and reads the bundles of S3-backed
// (instance-store) EC2 images in the format of EC2's own AMI tools
// (ec2-bundle-image, ec2-unbundle; manifest version 2007-10-10).
//
// Bundle streams an image's raw disk through tar (sparse, owner 0), a
// SHA-1 of the tar stream, gzip compressed on every core (pgzip), and
// AES-128-CBC with PKCS#7 padding (as `openssl enc` pads), into 10 MiB
// parts, each with its SHA-1, then writes the manifest: the AES key and IV
// (as hex text) encrypted with RSA PKCS#1 v1.5 for the user's certificate
// and for EC2's, signed with the user's private key over the
// <machine_configuration> and <image> elements. The image is never held in
// memory and never written to disk unencrypted.
//
// Unbundle reverses it with the user's private key the way ec2-unbundle
// does: it checks the signature and every part's digest, decrypts,
// decompresses, checks the tar stream's digest and writes the disk back.
package s3bundle

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/klauspost/pgzip"
)

// MaxImageSize is the largest image EC2 accepts in a bundle (10 GiB).
const MaxImageSize = 10 << 30

// DefaultLevel is the gzip level: the AMI tools use 9; 6 compresses
// images almost as small for a fraction of the time (see BENCHMARKS.md).
const DefaultLevel = 6

// DefaultBlockDevices is the original Aminator's mapping for its S3 images.
func DefaultBlockDevices() map[string]string {
	return map[string]string{
		"ami": "sda1", "root": "/dev/sda1",
		"ephemeral0": "sdb", "ephemeral1": "sdc", "ephemeral2": "sdd", "ephemeral3": "sde",
	}
}

// Options say what to bundle and for whom.
type Options struct {
	Name         string            // the bundle's prefix and the image's name in it; default the file's base name
	Account      string            // the user's AWS account number
	Arch         string            // i386, x86_64 or arm64
	UserCert     *x509.Certificate // the user's certificate
	Key          *rsa.PrivateKey   // the user's private key: signs the manifest
	EC2Cert      *x509.Certificate // default: EC2Certificate(Region)
	Region       string
	KernelID     string
	RamdiskID    string
	ProductCodes []string
	Ancestors    []string
	BlockDevices map[string]string // default DefaultBlockDevices
	Level        int               // gzip level 1-9; default DefaultLevel
	Workers      int               // compressing goroutines; default GOMAXPROCS
	PartSize     int64             // default PartSize
}

// Result is a bundle written.
type Result struct {
	ManifestPath string
	Manifest     *Manifest
	DataBytes    int64 // bytes of data read from the image (holes skipped)
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9()_+-][A-Za-z0-9().,_+-]{0,99}$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	idRE      = regexp.MustCompile(`^[a-z]+-[0-9a-f]{8,17}$`)
)

func safeName(s string) bool { return nameRE.MatchString(s) && !strings.Contains(s, "..") }

// check fills in defaults and refuses what EC2 would.
func (o *Options) check(image string) error {
	if o.Name == "" {
		o.Name = filepath.Base(image)
	}
	o.Account = strings.ReplaceAll(o.Account, "-", "")
	switch {
	case !safeName(o.Name):
		return fmt.Errorf("bundle name %q: use up to 100 letters, digits and ().,_+-", o.Name)
	case !accountRE.MatchString(o.Account):
		return fmt.Errorf("account %q: want the 12-digit AWS account number", o.Account)
	case o.Arch != "i386" && o.Arch != "x86_64" && o.Arch != "arm64":
		return fmt.Errorf("architecture %q: want i386, x86_64 or arm64", o.Arch)
	case o.Level < 0 || o.Level > 9:
		return fmt.Errorf("gzip level %d: want 1 to 9", o.Level)
	case o.UserCert == nil || o.Key == nil:
		return errors.New("bundle needs the user's certificate and private key")
	case o.KernelID != "" && !idRE.MatchString(o.KernelID), o.RamdiskID != "" && !idRE.MatchString(o.RamdiskID):
		return fmt.Errorf("kernel %q or ramdisk %q is not an image id", o.KernelID, o.RamdiskID)
	}
	if pub, ok := o.UserCert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&o.Key.PublicKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	if o.EC2Cert == nil {
		c, err := EC2Certificate(o.Region)
		if err != nil {
			return err
		}
		o.EC2Cert = c
	}
	if o.BlockDevices == nil {
		o.BlockDevices = DefaultBlockDevices()
	}
	if o.Level == 0 {
		o.Level = DefaultLevel
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.PartSize <= 0 {
		o.PartSize = PartSize
	}
	return nil
}

// Bundle writes the bundle of the raw disk image (a file or a block
// device) into dir: the parts, then NAME.manifest.xml. On error it leaves
// nothing in dir.
func Bundle(ctx context.Context, image, dir string, o Options) (*Result, error) {
	if err := o.check(image); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	src, h, err := openImage(image, o.Name)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer src.Close()
	pw := &partWriter{dir: dir, name: o.Name, size: o.PartSize}
	res, err := bundle(ctx, src, h, pw, o)
	if err != nil {
		pw.remove()
		return nil, fmt.Errorf("bundle %s: %w", image, err)
	}
	return res, nil
}

func bundle(ctx context.Context, src *os.File, h *tarHeader, pw *partWriter, o Options) (*Result, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	key, iv := secret[:16], secret[16:]
	digest, err := stream(ctx, src, h, pw, key, iv, o)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		BundlerName: "aminator", BundlerVersion: "1", BundlerRelease: "s3bundle",
		Arch: o.Arch, BlockDevices: o.BlockDevices, KernelID: o.KernelID, RamdiskID: o.RamdiskID,
		ProductCodes: o.ProductCodes, Name: o.Name, User: o.Account, Ancestors: o.Ancestors,
		Digest: digest, Size: h.size, Bundled: pw.total, Parts: pw.parts,
	}
	if err := m.encryptSecret(hex.EncodeToString(key), hex.EncodeToString(iv), o); err != nil {
		return nil, err
	}
	if err := m.Sign(o.Key); err != nil {
		return nil, err
	}
	path := filepath.Join(pw.dir, o.Name+".manifest.xml")
	if err := writeFile(path, m.XML()); err != nil {
		return nil, err
	}
	pw.tmp = append(pw.tmp, path)
	return &Result{ManifestPath: path, Manifest: m, DataBytes: h.stored()}, nil
}

// stream runs the image through tar, SHA-1, gzip and AES into the parts,
// and returns the tar stream's SHA-1.
func stream(ctx context.Context, src *os.File, h *tarHeader, pw *partWriter, key, iv []byte, o Options) (string, error) {
	cw, err := newCBCWriter(pw, key, iv)
	if err != nil {
		return "", err
	}
	gz, err := pgzip.NewWriterLevel(cw, o.Level)
	if err != nil {
		return "", fmt.Errorf("gzip: %w", err)
	}
	if err := gz.SetConcurrency(1<<20, 2*o.Workers); err != nil {
		return "", fmt.Errorf("gzip: %w", err)
	}
	sum := sha1.New()
	buf := make([]byte, 1<<20)
	if err := writeTar(io.MultiWriter(sum, gz), src, h, buf, ctx.Err); err != nil {
		gz.Close()
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("gzip: %w", err)
	}
	if err := cw.Close(); err != nil {
		return "", err
	}
	if err := pw.finish(); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// encryptSecret puts the key and IV, as hex text, encrypted for the user
// and for EC2 into the manifest.
func (m *Manifest) encryptSecret(key, iv string, o Options) error {
	enc := func(c *x509.Certificate, s string) (string, error) {
		b, err := rsa.EncryptPKCS1v15(rand.Reader, c.PublicKey.(*rsa.PublicKey), []byte(s))
		if err != nil {
			return "", fmt.Errorf("encrypt the key for %s: %w", c.Subject.CommonName, err)
		}
		return hex.EncodeToString(b), nil
	}
	var err error
	for _, f := range []struct {
		dst  *string
		cert *x509.Certificate
		text string
	}{{&m.EC2Key, o.EC2Cert, key}, {&m.UserKey, o.UserCert, key}, {&m.EC2IV, o.EC2Cert, iv}, {&m.UserIV, o.UserCert, iv}} {
		if *f.dst, err = enc(f.cert, f.text); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to path through a temporary file, so path appears whole.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
