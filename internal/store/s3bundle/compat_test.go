package s3bundle

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tar stream is byte for byte what GNU tar writes for the AMI tools'
// `tar -c -h -S --owner 0 --group 0` of the same file.
func TestTarIsGNUTars(t *testing.T) {
	dir := t.TempDir()
	for _, disk := range []string{sparseDisk(t, dir, 64<<20, 40), fullDisk(t, dir, 1<<20+5)} {
		f, err := os.Open(disk)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mapImage(f, filepath.Base(disk))
		if err != nil {
			t.Fatal(err)
		}
		var ours bytes.Buffer
		if err := writeTar(&ours, f, h, make([]byte, 1<<20), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		f.Close()
		gnu, err := exec.Command("tar", "-c", "-h", "-S", "--owner", "0", "--group", "0", "-C", dir, filepath.Base(disk)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours.Bytes(), gnu) {
			t.Fatalf("%s: our tar stream (%d bytes) is not GNU tar's (%d bytes); first difference at %d",
				disk, ours.Len(), len(gnu), firstDiff(ours.Bytes(), gnu))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// ec2-unbundle's own steps, with the tools it runs: openssl decrypts the
// key and IV with the user's private key, then `cat parts | openssl enc -d
// -aes-128-cbc | gzip -d | tee digest | tar -x -S` gives the image back,
// and openssl verifies the manifest's signature.
func TestEC2UnbundleTools(t *testing.T) {
	dir := t.TempDir()
	keyPath, _ := writeIdentity(t, dir)
	disk := sparseDisk(t, dir, 32<<20, 12)
	o := testOptions(t)
	bdir := t.TempDir()
	res, err := Bundle(context.Background(), disk, bdir, o)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	key := opensslDecrypt(t, dir, keyPath, m.UserKey)
	iv := opensslDecrypt(t, dir, keyPath, m.UserIV)
	var parts []string
	for _, p := range m.Parts {
		parts = append(parts, filepath.Join(bdir, p.Name))
	}
	out := t.TempDir()
	script := `cat "$@" | openssl enc -d -aes-128-cbc -K ` + key + ` -iv ` + iv +
		` | gzip -d | tee >(sha1sum >` + dir + `/digest) | tar -x -S -C ` + out + `; wait`
	if b, err := exec.Command("bash", append([]string{"-o", "pipefail", "-c", script, "unbundle"}, parts...)...).CombinedOutput(); err != nil {
		t.Fatalf("unbundle with the tools: %v: %s", err, b)
	}
	sameFile(t, disk, filepath.Join(out, "disk.img"))
	digest, _ := os.ReadFile(filepath.Join(dir, "digest"))
	if !strings.HasPrefix(string(digest), m.Digest+" ") {
		t.Fatalf("sha1sum of the tar stream %q, manifest %s", digest, m.Digest)
	}
	opensslVerify(t, dir, res.ManifestPath)
}

// opensslDecrypt decrypts a hex RSA ciphertext from the manifest with
// `openssl pkeyutl` and checks it is the 32 hex characters of the key.
func opensslDecrypt(t *testing.T, dir, keyPath, hexCipher string) string {
	t.Helper()
	c, _ := hex.DecodeString(hexCipher)
	in := filepath.Join(dir, "secret.bin")
	if err := os.WriteFile(in, c, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("openssl", "pkeyutl", "-decrypt", "-inkey", keyPath, "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", in).Output()
	if err != nil || len(b) != 32 {
		t.Fatalf("openssl pkeyutl -decrypt: %v (%d bytes)", err, len(b))
	}
	return string(b)
}

// opensslVerify checks the signature of the manifest with `openssl dgst
// -sha1 -verify` over the machine_configuration and image text.
func opensslVerify(t *testing.T, dir, manifest string) {
	t.Helper()
	doc, _ := os.ReadFile(manifest)
	m, err := ParseManifest(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, c := userIdentity(t)
	pub, _ := x509.MarshalPKIXPublicKey(c.PublicKey)
	sig, _ := hex.DecodeString(m.Signature)
	files := map[string][]byte{
		"pub.pem":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"sig.bin":    sig,
		"signed.txt": []byte(cut(string(doc), "machine_configuration") + cut(string(doc), "image")),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("openssl", "dgst", "-sha1", "-verify", "pub.pem", "-signature", "sig.bin", "signed.txt")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "Verified OK") {
		t.Fatalf("openssl dgst -verify: %v: %s", err, b)
	}
}
