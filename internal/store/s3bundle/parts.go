package s3bundle

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
)

// PartSize is the size of every part but the last, as ec2-bundle-image cuts them.
const PartSize = 10 << 20

// Part is one piece of the encrypted image.
type Part struct {
	Name   string `json:"name"`
	Digest string `json:"sha1"` // of the part's bytes, lower-case hex
	Size   int64  `json:"size"`
}

// PartName is the name of part i of count: the index zero-padded to the
// number of digits of count, as ec2-bundle-image names them.
func PartName(name string, i, count int) string {
	return fmt.Sprintf("%s.part.%0*d", name, len(strconv.Itoa(count)), i)
}

// partWriter cuts the encrypted stream into parts under dir. Parts are
// written under temporary names, since a part's name depends on how many
// there are; finish renames them.
type partWriter struct {
	dir, name string
	size      int64
	f         *os.File
	h         hash.Hash
	parts     []Part
	tmp       []string // every file created, for cleanup
	total     int64
}

func (p *partWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.f == nil {
			if err := p.open(); err != nil {
				return n - len(b), err
			}
		}
		cur := &p.parts[len(p.parts)-1]
		k := int(min(int64(len(b)), p.size-cur.Size))
		if _, err := p.f.Write(b[:k]); err != nil {
			return n - len(b), fmt.Errorf("write part: %w", err)
		}
		p.h.Write(b[:k])
		cur.Size += int64(k)
		p.total += int64(k)
		b = b[k:]
		if cur.Size == p.size {
			if err := p.close(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

func (p *partWriter) open() error {
	f, err := os.CreateTemp(p.dir, "."+p.name+".part-*.tmp")
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	p.f, p.h = f, sha1.New()
	p.tmp = append(p.tmp, f.Name())
	p.parts = append(p.parts, Part{})
	return nil
}

func (p *partWriter) close() error {
	if p.f == nil {
		return nil
	}
	p.parts[len(p.parts)-1].Digest = hex.EncodeToString(p.h.Sum(nil))
	err := p.f.Close()
	p.f = nil
	if err != nil {
		return fmt.Errorf("close part: %w", err)
	}
	return nil
}

// finish closes the last part and gives every part its final name.
func (p *partWriter) finish() error {
	if err := p.close(); err != nil {
		return err
	}
	for i := range p.parts {
		p.parts[i].Name = PartName(p.name, i, len(p.parts))
		final := filepath.Join(p.dir, p.parts[i].Name)
		if err := os.Rename(p.tmp[i], final); err != nil {
			return fmt.Errorf("name part: %w", err)
		}
		p.tmp[i] = final
	}
	return nil
}

// remove deletes every file written (after a failure).
func (p *partWriter) remove() {
	if p.f != nil {
		p.f.Close()
	}
	for _, f := range p.tmp {
		os.Remove(f)
	}
}
