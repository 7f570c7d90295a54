package attest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/aminator-go/aminator/internal/image/sbom"
)

// Leftovers of an interrupted Put or Delete, beside the images' directories
// (an image id never starts with '.').
const (
	tmpPrefix = ".tmp-" // a Put's new documents, not yet swapped in
	oldPrefix = ".old-" // an image's documents swapped out by a Put or Delete
)

// stage is called at each step of a Put or Delete; tests set it to fail or
// crash there.
var stage = func(string) error { return nil }

// Put stores an image's documents and its inventory's packages, replacing
// whatever the store held for it: all of them or, on failure, none (the
// old ones stay).
func (s *Store) Put(ctx context.Context, imageID string, inv *sbom.Inventory, docs ...Doc) error {
	if err := CheckImageID(imageID); err != nil {
		return err
	}
	docs, err := prepare(imageID, docs)
	if err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The documents' syncs wait on the disk while the index is written.
	written := make(chan error, 1)
	var tmp string
	go func() {
		var err error
		tmp, err = s.writeTemp(imageID, docs)
		written <- err
	}()
	ierr := indexImage(ctx, tx, s.cloud, imageID, inv, docs)
	if err := <-written; err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if ierr != nil {
		return ierr
	}
	if err := stage("indexed"); err != nil {
		return err
	}
	old, err := s.swap(imageID, tmp)
	if err != nil {
		return err
	}
	if err := stage("swapped"); err != nil {
		return errorsJoin(err, s.unswap(imageID, old))
	}
	if err := tx.Commit(); err != nil {
		return errorsJoin(fmt.Errorf("attestation index: commit %s: %w", imageID, err), s.unswap(imageID, old))
	}
	stage("committed")
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// prepare checks docs (known kinds, each once, a matching SHA-256) and
// fills in their digests and media types.
func prepare(imageID string, docs []Doc) ([]Doc, error) {
	seen := map[string]bool{}
	out := make([]Doc, len(docs))
	for i, d := range docs {
		_, media, ok := kindFile(d.Kind)
		if !ok {
			return nil, fmt.Errorf("image %s: document kind %q: want %s, %s or %s", imageID, d.Kind, KindSPDX, KindCycloneDX, KindProvenance)
		}
		if seen[d.Kind] {
			return nil, fmt.Errorf("image %s: two %s documents", imageID, d.Kind)
		}
		seen[d.Kind] = true
		got := digest(d.Body)
		if d.SHA256 != "" && d.SHA256 != got {
			return nil, fmt.Errorf("image %s: %s document: SHA-256 %s given, its body's is %s", imageID, d.Kind, d.SHA256, got)
		}
		d.SHA256 = got
		if d.MediaType == "" {
			d.MediaType = media
		}
		out[i] = d
	}
	return out, nil
}

// writeTemp writes docs to a new temporary directory of the store, then
// syncs them and it side by side (each sync waits on the disk).
func (s *Store) writeTemp(imageID string, docs []Doc) (tmp string, err error) {
	tmp = filepath.Join(s.dir, tmpPrefix+imageID+"-"+random())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", fmt.Errorf("image %s: documents: %w", imageID, err)
	}
	defer func() {
		if err == nil {
			err = stage("written")
		}
		if err != nil {
			os.RemoveAll(tmp)
			tmp = ""
		}
	}()
	files := make([]*os.File, 0, len(docs)+1)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, d := range docs {
		file, _, _ := kindFile(d.Kind)
		f, err := os.OpenFile(filepath.Join(tmp, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("image %s: %s document: %w", imageID, d.Kind, err)
		}
		files = append(files, f)
		if _, err := f.Write(d.Body); err != nil {
			return "", fmt.Errorf("image %s: %s document: %w", imageID, d.Kind, err)
		}
	}
	d, err := os.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("image %s: documents: %w", imageID, err)
	}
	files = append(files, d)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { errs[i] = f.Sync() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("image %s: documents: sync: %w", imageID, err)
	}
	return tmp, nil
}

// indexImage replaces the image's rows: its package order and cloud, its
// documents and its packages.
func indexImage(ctx context.Context, tx *sql.Tx, cloud, imageID string, inv *sbom.Inventory, docs []Doc) error {
	kind := string(sbom.KindNone)
	if inv != nil && inv.Kind != "" {
		kind = string(inv.Kind)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE id = ?`, imageID); err != nil {
		return fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO images (id, pkgkind, cloud) VALUES (?, ?, ?)`, imageID, kind, cloud)
	if err != nil {
		return fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	n, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	for _, d := range docs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO docs (image_id, kind, media_type, sha256) VALUES (?, ?, ?, ?)`,
			imageID, d.Kind, d.MediaType, d.SHA256); err != nil {
			return fmt.Errorf("attestation index: %s: %w", imageID, err)
		}
	}
	if inv == nil || len(inv.Packages) == 0 {
		return nil
	}
	if err := indexPackages(ctx, tx, n, inv.Packages); err != nil {
		return fmt.Errorf("attestation index: %s: %w", imageID, err)
	}
	return nil
}

// indexPackages records that image n carries pkgs, adding the packages
// no image carried before: two statements over the list as JSON, as
// statements one package at a time cost more than the rows.
func indexPackages(ctx context.Context, tx *sql.Tx, n int64, pkgs []sbom.Package) error {
	rows := make([][3]string, len(pkgs))
	for i, p := range pkgs {
		rows[i] = [3]string{p.Name, p.Arch, p.Version}
	}
	list, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO pkgs (name, arch, version)
		SELECT value->>0, value->>1, value->>2 FROM json_each(?)`, string(list)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT OR IGNORE INTO image_pkgs (image, pkg)
		SELECT ?, p.n FROM json_each(?) j JOIN pkgs p ON p.name = j.value->>0 AND p.arch = j.value->>1 AND p.version = j.value->>2`, n, string(list))
	return err
}

// swap puts the synced directory tmp in the image's place, moving the old
// one (if any) aside; it returns where the old one went ("" if none).
func (s *Store) swap(imageID, tmp string) (string, error) {
	dst := filepath.Join(s.dir, imageID)
	old, err := s.moveAside(imageID)
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", errorsJoin(fmt.Errorf("image %s: documents: %w", imageID, err), s.unswap(imageID, old))
	}
	if err := syncDir(s.dir); err != nil {
		return "", errorsJoin(fmt.Errorf("image %s: documents: %w", imageID, err), s.unswap(imageID, old))
	}
	return old, nil
}

// moveAside renames the image's directory to a new .old- name, returning
// it ("" when the image has none).
func (s *Store) moveAside(imageID string) (string, error) {
	dst := filepath.Join(s.dir, imageID)
	old := filepath.Join(s.dir, oldPrefix+imageID+"-"+random())
	if err := os.Rename(dst, old); err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("image %s: documents: %w", imageID, err)
	}
	return old, nil
}

// unswap puts back the image's old directory (none: removes the image's).
func (s *Store) unswap(imageID, old string) error {
	dst := filepath.Join(s.dir, imageID)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if old == "" {
		return syncDir(s.dir)
	}
	if err := os.Rename(old, dst); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// Delete removes an image's documents and packages; an image with none is
// no error.
func (s *Store) Delete(ctx context.Context, imageID string) error {
	if err := CheckImageID(imageID); err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM images WHERE id = ?`, imageID); err != nil {
		return fmt.Errorf("attestation index: delete %s: %w", imageID, err)
	}
	// Packages no image carries any more (this one's, and those a Put
	// replacing an image left) go too.
	if _, err := tx.ExecContext(ctx, `DELETE FROM pkgs WHERE NOT EXISTS (SELECT 1 FROM image_pkgs WHERE pkg = pkgs.n)`); err != nil {
		return fmt.Errorf("attestation index: delete %s: %w", imageID, err)
	}
	old, err := s.moveAside(imageID)
	if err != nil {
		return err
	}
	if err := stage("deleting"); err != nil {
		return errorsJoin(err, s.unswap(imageID, old))
	}
	if err := tx.Commit(); err != nil {
		return errorsJoin(fmt.Errorf("attestation index: delete %s: %w", imageID, err), s.unswap(imageID, old))
	}
	stage("deleted")
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func random() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
