package provenance

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The host's key is made once, readable by root alone, trusted in the
// trust file; a second call loads it and adds nothing; what it signs
// verifies against that trust file.
func TestHostKey(t *testing.T) {
	dir := t.TempDir()
	key, trust := filepath.Join(dir, "keys", "signing.pem"), filepath.Join(dir, "keys", "trust.yml")
	s, made, err := HostKey(key, trust, "host")
	if err != nil || !made {
		t.Fatalf("HostKey: made %v, %v", made, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	again, made, err := HostKey(key, trust, "host")
	if err != nil || made {
		t.Fatalf("second HostKey: made %v, %v", made, err)
	}
	id1, _ := s.KeyID()
	id2, _ := again.KeyID()
	if id1 != id2 {
		t.Fatalf("another key the second time: %s, %s", id1, id2)
	}
	tr, err := LoadTrust(trust)
	if err != nil || len(tr.Signers) != 1 || tr.Signers[0].Name != "host" {
		t.Fatalf("trust file: %+v %v", tr, err)
	}
	in := foundationInputs("img-f")
	env := signed(t, in, s)
	if _, err := Verify(env, tr, time.Now(), expect(in)); err != nil {
		t.Errorf("verify with the trust file: %v", err)
	}
}

// A second key is added beside the first; the same key twice is one
// entry; bounds survive the round trip.
func TestTrustKeyKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust.yml")
	a, err := CreateKey(filepath.Join(dir, "a.pem"), Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CreateKey(filepath.Join(dir, "b.pem"), ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateKey(filepath.Join(dir, "a.pem"), Ed25519); err == nil {
		t.Error("CreateKey overwrote a key")
	}
	tr := &Trust{}
	if err := tr.Add("a", a.Public(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}); err != nil {
		t.Fatal(err)
	}
	y, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(trust, y, 0o644)
	for _, k := range []*KeySigner{b, b, a} {
		if err := TrustKey(trust, "k", k.Public()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := LoadTrust(trust)
	if err != nil || len(got.Signers) != 2 || got.Signers[0].Name != "a" || got.Signers[0].NotBefore.Year() != 2026 {
		t.Fatalf("trust: %+v %v", got, err)
	}
}
