package s3bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
)

// Opener opens a part of a bundle by its file name (from a directory, a bucket...).
type Opener func(ctx context.Context, name string) (io.ReadCloser, error)

// DirOpener opens parts from a directory.
func DirOpener(dir string) Opener {
	return func(_ context.Context, name string) (io.ReadCloser, error) {
		if !safeName(name) {
			return nil, fmt.Errorf("part name %q", name)
		}
		return os.Open(dir + "/" + name)
	}
}

// Unbundle restores the disk of a bundle into out, as ec2-unbundle does
// with the user's private key: it verifies the manifest's signature
// (against key's public half) and every part's digest before decrypting,
// then the tar stream's digest and the image's size. out must be empty;
// zero blocks become holes.
func Unbundle(ctx context.Context, manifest []byte, key *rsa.PrivateKey, open Opener, out *os.File) (*Manifest, error) {
	if err := Verify(manifest, &key.PublicKey); err != nil {
		return nil, err
	}
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Parts {
		if err := checkPart(ctx, open, p); err != nil {
			return nil, err
		}
	}
	aesKey, iv, err := m.decryptSecret(key)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(catParts(ctx, open, m.Parts, pw)) }()
	defer pr.Close()
	cr, err := newCBCReader(pr, aesKey, iv)
	if err != nil {
		return nil, err
	}
	if err := untar(cr, m, out); err != nil {
		return nil, err
	}
	return m, nil
}

// checkPart reads a part and compares its SHA-1 with the manifest's.
func checkPart(ctx context.Context, open Opener, p Part) error {
	r, err := open(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.Name, err)
	}
	defer r.Close()
	h := sha1.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("part %s: %w", p.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.Digest {
		return fmt.Errorf("part %s: digest %s, manifest says %s", p.Name, got, p.Digest)
	}
	return nil
}

func catParts(ctx context.Context, open Opener, parts []Part, w io.Writer) error {
	for _, p := range parts {
		r, err := open(ctx, p.Name)
		if err != nil {
			return fmt.Errorf("part %s: %w", p.Name, err)
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("part %s: %w", p.Name, err)
		}
	}
	return nil
}

// decryptSecret recovers the AES key and IV from their user copies.
func (m *Manifest) decryptSecret(key *rsa.PrivateKey) (aesKey, iv []byte, err error) {
	dec := func(h string) ([]byte, error) {
		c, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		text, err := rsa.DecryptPKCS1v15(nil, key, c)
		if err != nil {
			return nil, err
		}
		b, err := hex.DecodeString(string(text))
		if err != nil || len(b) != 16 {
			return nil, errors.New("not 32 hex characters")
		}
		return b, nil
	}
	if aesKey, err = dec(m.UserKey); err != nil {
		return nil, nil, fmt.Errorf("manifest: user key: %w", err)
	}
	if iv, err = dec(m.UserIV); err != nil {
		return nil, nil, fmt.Errorf("manifest: user iv: %w", err)
	}
	return aesKey, iv, nil
}

// untar gunzips and reads the tar stream, writes its one member to out and
// checks the stream's digest and the image's size.
func untar(r io.Reader, m *Manifest, out *os.File) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	sum := sha1.New()
	tr := tar.NewReader(io.TeeReader(gz, sum))
	hdr, err := tr.Next()
	if err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if hdr.Name != m.Name || hdr.Size != m.Size {
		return fmt.Errorf("tar: member %q of %d bytes, manifest says %q of %d", hdr.Name, hdr.Size, m.Name, m.Size)
	}
	if err := copySparse(out, tr, hdr.Size); err != nil {
		return err
	}
	if _, err := tr.Next(); err != io.EOF {
		return fmt.Errorf("tar: more than one member (%v)", err)
	}
	if _, err := io.Copy(io.Discard, io.TeeReader(gz, sum)); err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != m.Digest {
		return fmt.Errorf("image digest %s, manifest says %s", got, m.Digest)
	}
	return nil
}

// copySparse copies size bytes of r to out, seeking over zero blocks.
func copySparse(out *os.File, r io.Reader, size int64) error {
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	var off int64
	for off < size {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		for i := 0; i < n; i += len(zero) {
			b := buf[i:min(i+len(zero), n)]
			if bytes.Equal(b, zero[:len(b)]) {
				continue
			}
			if _, err := out.WriteAt(b, off+int64(i)); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	return out.Truncate(size)
}
