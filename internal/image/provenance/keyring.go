package provenance

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
)

// CreateKey writes a new private key (alg: Ed25519 or ECDSAP256) to path,
// which must not exist, readable by its owner alone, and returns its
// signer.
func CreateKey(path, alg string) (*KeySigner, error) {
	pemBytes, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	s, err := ParseKey(pemBytes)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("signing key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	_, err = f.Write(pemBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write signing key %s: %w", path, err)
	}
	return s, nil
}

// HostKey is this host's own signing key at path, made (ed25519) the first
// time and added to the trust file at trustPath under name; made says it
// was. Two processes making it at once get the same key: the first's.
func HostKey(path, trustPath, name string) (s *KeySigner, made bool, err error) {
	s, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	if s, err = CreateKey(path, Ed25519); errors.Is(err, fs.ErrExist) {
		s, err = LoadKeyFile(path)
		return s, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if err := TrustKey(trustPath, name, s.Public()); err != nil {
		return nil, true, err
	}
	return s, true, nil
}

// TrustKey adds a signer with no validity bounds to the trust file at
// path, making the file when there is none; a key already listed is left
// as it is.
func TrustKey(path, name string, pub crypto.PublicKey) error {
	t := &Trust{}
	if _, err := os.Stat(path); err == nil {
		if t, err = LoadTrust(path); err != nil {
			return err
		}
	}
	id, err := KeyID(pub)
	if err != nil {
		return err
	}
	for _, s := range t.Signers {
		if s.KeyID == id {
			return nil
		}
	}
	if err := t.Add(name, pub, time.Time{}, time.Time{}); err != nil {
		return err
	}
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o644)
}

// Marshal is the trust file's YAML.
func (t *Trust) Marshal() ([]byte, error) {
	type signer struct {
		Name      string     `yaml:"name"`
		PublicKey string     `yaml:"public_key"`
		NotBefore *time.Time `yaml:"not_before,omitempty"`
		NotAfter  *time.Time `yaml:"not_after,omitempty"`
	}
	var f struct {
		Signers []signer `yaml:"signers"`
	}
	for _, s := range t.Signers {
		p, err := PublicKeyPEM(s.Public)
		if err != nil {
			return nil, err
		}
		e := signer{Name: s.Name, PublicKey: string(p)}
		if !s.NotBefore.IsZero() {
			e.NotBefore = &s.NotBefore
		}
		if !s.NotAfter.IsZero() {
			e.NotAfter = &s.NotAfter
		}
		f.Signers = append(f.Signers, e)
	}
	return yaml.Marshal(&f)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".trust-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
