package s3bundle

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
	testCrt *x509.Certificate
)

// userIdentity is a user's RSA key and self-signed certificate, as
// `openssl req -x509 -newkey rsa:2048` makes them for the AMI tools.
func userIdentity(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bundle test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		testKey, testCrt = k, c
	})
	return testKey, testCrt
}

// writeIdentity writes the key and certificate as PEM files into dir.
func writeIdentity(t testing.TB, dir string) (keyPath, certPath string) {
	k, c := userIdentity(t)
	keyPath, certPath = filepath.Join(dir, "pk.pem"), filepath.Join(dir, "cert.pem")
	kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	cb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	if err := os.WriteFile(keyPath, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, cb, 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath
}

func testOptions(t testing.TB) Options {
	k, c := userIdentity(t)
	return Options{Account: "1234-5678-9012", Arch: "x86_64", UserCert: c, Key: k, Region: "us-east-1", PartSize: 64 << 10}
}

// sparseDisk makes a disk of size bytes with n random 4 KiB-aligned runs
// of data and holes between them.
func sparseDisk(t testing.TB, dir string, size int64, n int) string {
	p := filepath.Join(dir, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	step := size / int64(n)
	for i := int64(0); i < int64(n); i++ {
		b := make([]byte, 4096*(1+i%5))
		rand.Read(b)
		if _, err := f.WriteAt(b, i*step&^4095); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func fullDisk(t testing.TB, dir string, size int) string {
	p := filepath.Join(dir, "full.img")
	b := make([]byte, size)
	rand.Read(b)
	copy(b[size/2:], make([]byte, size/4)) // zeros in the data, not holes
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip bundles disk into a new directory and unbundles it; the
// result must be the disk, byte for byte.
func roundTrip(t *testing.T, disk string, o Options) (string, *Result) {
	t.Helper()
	dir := t.TempDir()
	res, err := Bundle(context.Background(), disk, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(res.ManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "restored.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := Unbundle(context.Background(), doc, o.Key, DirOpener(dir), out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, disk, out.Name())
	return dir, res
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%d and %d bytes)", a, b, len(x), len(y))
	}
}

func TestRoundTripSparse(t *testing.T) {
	disk := sparseDisk(t, t.TempDir(), 64<<20, 40) // 40 runs: the header's 4 and two extension blocks
	o := testOptions(t)
	o.PartSize = 16 << 10
	dir, res := roundTrip(t, disk, o)
	m := res.Manifest
	if len(m.Parts) < 10 || len(m.Parts) < 100 && !strings.HasSuffix(m.Parts[0].Name, ".part.00") {
		t.Fatalf("parts %d, first %s: want >= 10 zero-padded names", len(m.Parts), m.Parts[0].Name)
	}
	if m.Size != 64<<20 || res.DataBytes >= 2<<20 {
		t.Fatalf("size %d, data read %d: want the real size and only the data runs read", m.Size, res.DataBytes)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(m.Parts)+1 {
		t.Fatalf("%d files in the bundle directory, want %d parts and the manifest", len(ents), len(m.Parts))
	}
}

func TestRoundTripFull(t *testing.T) {
	o := testOptions(t)
	o.PartSize = PartSize
	_, res := roundTrip(t, fullDisk(t, t.TempDir(), 3<<20+123), o)
	if n := len(res.Manifest.Parts); n != 1 || res.Manifest.Parts[0].Name != "full.img.part.0" {
		t.Fatalf("parts %+v, want one named full.img.part.0", res.Manifest.Parts)
	}
}

func TestRoundTripEmptyAndHoleOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "holes.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p, testOptions(t))
	if err := os.Truncate(p, 5<<20); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, p, testOptions(t))
}
