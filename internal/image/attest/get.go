package attest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Get returns an image's document of a kind, its body checked against the
// SHA-256 the index holds: a body that changed since Put stored it is an
// error naming the image and the kind. An image without the document
// wraps ErrNotFound.
func (s *Store) Get(ctx context.Context, imageID, kind string) (Doc, error) {
	if err := CheckImageID(imageID); err != nil {
		return Doc{}, err
	}
	if _, _, ok := kindFile(kind); !ok {
		return Doc{}, fmt.Errorf("document kind %q: want %s, %s or %s", kind, KindSPDX, KindCycloneDX, KindProvenance)
	}
	var d Doc
	var err error
	// A Put of the same image may swap the files between reading the row
	// and the file: a second look settles it.
	for range 2 {
		if d, err = s.row(ctx, imageID, kind); err != nil {
			return Doc{}, err
		}
		if err = s.read(imageID, &d); err == nil {
			return d, nil
		}
	}
	return Doc{}, err
}

// row is a document's index row, without its body.
func (s *Store) row(ctx context.Context, imageID, kind string) (Doc, error) {
	d := Doc{Kind: kind}
	err := s.db.QueryRowContext(ctx, `SELECT media_type, sha256 FROM docs WHERE image_id = ? AND kind = ?`, imageID, kind).Scan(&d.MediaType, &d.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return Doc{}, fmt.Errorf("image %s has no %s document: %w", imageID, kind, ErrNotFound)
	}
	if err != nil {
		return Doc{}, fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	return d, nil
}

// read reads d's body from the image's directory and checks it against
// d.SHA256.
func (s *Store) read(imageID string, d *Doc) error {
	file, _, _ := kindFile(d.Kind)
	body, err := os.ReadFile(filepath.Join(s.dir, imageID, file))
	if err != nil {
		return fmt.Errorf("image %s: %s document: %w", imageID, d.Kind, err)
	}
	if got := digest(body); got != d.SHA256 {
		return fmt.Errorf("image %s: %s document %s has changed since it was stored: its SHA-256 is %s, the index has %s",
			imageID, d.Kind, filepath.Join(s.dir, imageID, file), got, d.SHA256)
	}
	d.Body = body
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Docs returns every document of an image (SPDX, CycloneDX, provenance,
// those it has), each checked as Get checks it. An image with none wraps
// ErrNotFound.
func (s *Store) Docs(ctx context.Context, imageID string) ([]Doc, error) {
	if err := CheckImageID(imageID); err != nil {
		return nil, err
	}
	have, err := s.rows(ctx, s.db, imageID)
	if err != nil {
		return nil, err
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("image %s has no documents: %w", imageID, ErrNotFound)
	}
	var out []Doc
	for _, k := range kinds {
		if _, ok := have[k.kind]; ok {
			d, err := s.Get(ctx, imageID, k.kind)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// rows are an image's documents' digests by kind.
func (s *Store) rows(ctx context.Context, q querier, imageID string) (map[string]string, error) {
	rs, err := q.QueryContext(ctx, `SELECT kind, sha256 FROM docs WHERE image_id = ?`, imageID)
	if err != nil {
		return nil, fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var k, sum string
		if err := rs.Scan(&k, &sum); err != nil {
			return nil, fmt.Errorf("attestation index: %s: %w", imageID, err)
		}
		out[k] = sum
	}
	return out, rs.Err()
}

// recover finishes or undoes what a crashed Put or Delete left, under the
// write lock (so never one still running): temporary directories go; an
// image directory moved aside comes back if the index still describes it
// and goes if the index describes the new one or none; an image directory
// the index does not know goes.
func (s *Store) recover(ctx context.Context) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("attestation store: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			os.RemoveAll(filepath.Join(s.dir, name))
		case strings.HasPrefix(name, oldPrefix):
			if err := s.settle(ctx, tx, name); err != nil {
				return err
			}
		}
	}
	if ents, err = os.ReadDir(s.dir); err != nil {
		return fmt.Errorf("attestation store: %w", err)
	}
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || CheckImageID(id) != nil {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE id = ?`, id).Scan(&n); err != nil {
			return fmt.Errorf("attestation index: %w", err)
		}
		if n == 0 {
			os.RemoveAll(filepath.Join(s.dir, id))
		}
	}
	return tx.Commit()
}

// settle decides the fate of a directory an interrupted Put or Delete
// moved aside (.old-ID-RANDOM).
func (s *Store) settle(ctx context.Context, tx *sql.Tx, name string) error {
	old := filepath.Join(s.dir, name)
	rest := strings.TrimPrefix(name, oldPrefix)
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || CheckImageID(rest[:i]) != nil {
		return os.RemoveAll(old)
	}
	id := rest[:i]
	want, err := s.rows(ctx, tx, id)
	if err != nil {
		return err
	}
	switch {
	case len(want) == 0 || holds(filepath.Join(s.dir, id), want):
		return os.RemoveAll(old) // the Delete or Put committed
	case holds(old, want):
		return s.unswap(id, old) // it did not: the old documents are the image's
	}
	return nil // neither: left for a person, and Get says the image's documents changed
}

// holds reports whether dir holds exactly the documents whose digests
// want lists.
func holds(dir string, want map[string]string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != len(want) {
		return false
	}
	for kind, sum := range want {
		file, _, _ := kindFile(kind)
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || digest(b) != sum {
			return false
		}
	}
	return true
}
