package provenance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestKeyFiles(t *testing.T) {
	for _, alg := range []string{Ed25519, ECDSAP256} {
		pemBytes, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "key.pem")
		os.WriteFile(path, pemBytes, 0o600)
		s, err := LoadKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := s.KeyID()
		again, _ := KeyID(s.Public())
		if !strings.HasPrefix(id, "sha256:") || len(id) != 7+64 || id != again {
			t.Errorf("%s: key id %q, %q", alg, id, again)
		}
	}
	if _, err := GenerateKey("rsa"); err == nil {
		t.Error("GenerateKey made an rsa key")
	}
}

func TestParseKeyRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed, _ := GenerateKey(Ed25519)
	for name, tc := range map[string]struct {
		pem  []byte
		want string
	}{
		"not PEM":     {[]byte("hello"), "not a PEM"},
		"public key":  {[]byte(strings.Replace(string(ed), "PRIVATE", "PUBLIC", 2)), "not a PEM"},
		"damaged DER": {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parse PKCS#8"},
		"P-384":       {pkcs8(t, p384), "only P-256"},
		"RSA":         {pkcs8(t, rsaKey), "only ed25519 and ECDSA P-256"},
	} {
		if _, err := ParseKey(tc.pem); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "read signing key") {
		t.Errorf("missing key file: %v", err)
	}
}

func trustYAML(t *testing.T, pub any, extra string) string {
	t.Helper()
	p, err := PublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return "signers:\n  - name: bakery\n    public_key: |\n      " + strings.ReplaceAll(strings.TrimSpace(string(p)), "\n", "\n      ") + "\n" + extra
}

func TestTrustFile(t *testing.T) {
	key := newKey(t, ECDSAP256)
	path := filepath.Join(t.TempDir(), "trust.yaml")
	os.WriteFile(path, []byte(trustYAML(t, key.Public(), "    not_before: 2026-01-01T00:00:00Z\n    not_after: 2027-01-01T00:00:00Z\n")), 0o644)
	tr, err := LoadTrust(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := key.KeyID()
	s := tr.Signers[0]
	if s.Name != "bakery" || s.KeyID != id || !s.NotBefore.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !s.NotAfter.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("read %+v", s)
	}
	in := bakeInputs("img-app", "img-base")
	if _, err := Verify(signed(t, in, key), tr, now, expect(in)); err != nil {
		t.Fatal(err)
	}
}

func TestTrustFileRefuses(t *testing.T) {
	key := newKey(t, Ed25519)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, tc := range map[string]struct{ yaml, want string }{
		"no signers":      {"signers: []\n", "no signers"},
		"unknown field":   {trustYAML(t, key.Public(), "    expires: 2027-01-01T00:00:00Z\n"), "field expires not found"},
		"no name":         {strings.Replace(trustYAML(t, key.Public(), ""), "name: bakery", "name: ''", 1), "has no name"},
		"not a key":       {"signers:\n  - name: x\n    public_key: hello\n", "not a PEM"},
		"P-384":           {trustYAML(t, &p384.PublicKey, ""), "only P-256"},
		"window inverted": {trustYAML(t, key.Public(), "    not_before: 2027-01-01T00:00:00Z\n    not_after: 2026-01-01T00:00:00Z\n"), "is before not_before"},
		"bad time":        {trustYAML(t, key.Public(), "    not_after: next year\n"), "decode"},
		"same key twice":  {trustYAML(t, key.Public(), "") + strings.TrimPrefix(strings.Replace(trustYAML(t, key.Public(), ""), "bakery", "again", 1), "signers:\n"), "have the same key"},
	} {
		if _, err := ParseTrust([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := LoadTrust(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "read trust file") {
		t.Errorf("missing trust file: %v", err)
	}
}
