// Package attest keeps each image's attestations, its SPDX and CycloneDX
// SBOMs and its signed provenance envelope, on this host, and answers
// "which images carry this package?" from them.
//
// A Store is a directory, STATE/attest: the documents of image ID are
// files under ID/ (spdx.json, cyclonedx.json, provenance.dsse.json), and
// index.db, an SQLite database, holds each document's kind, media type and
// SHA-256 and the packages of each image's inventory (name, version,
// architecture, and whether the versions are Debian's or rpm's). Image ids
// are untrusted: one that could name anything but a directory of the
// store is refused. A store seen In a cloud records the cloud with what it
// Puts and lists only that cloud's images, for gc.
//
// Put replaces an image's documents all together or not at all: it writes
// them to a temporary directory, syncs them, swaps it in for the old one
// and commits the index rows in one SQLite transaction, which holds the
// database's write lock throughout; Open finishes or undoes a Put or
// Delete a crash interrupted. Get re-checks a document's SHA-256 against
// the index, so a changed file is an error, never served.
//
// Has answers a Query (ParseQuery: NAME, NAME=VERSION, NAME=3.0.x,
// NAME>=3.0,<3.1) by looking the name up in the index and comparing each
// image's version in that image's own order: dpkg's for a Debian image
// (debversion), rpm's for an RPM one (rpmversion).
package attest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", as the local cloud uses

	"github.com/aminator-go/aminator/internal/plugin"
)

// Kinds of document.
const (
	KindSPDX       = "spdx"
	KindCycloneDX  = "cyclonedx"
	KindProvenance = "provenance"
)

// Media types of the documents, each kind's default.
const (
	MediaSPDX      = "application/spdx+json"
	MediaCycloneDX = "application/vnd.cyclonedx+json"
	MediaDSSE      = "application/vnd.dsse.envelope.v1+json"
	MediaInToto    = "application/vnd.in-toto+json"
)

// kinds are the documents a Store keeps, with the file each is kept in
// and its default media type, in the order Docs returns them.
var kinds = []struct{ kind, file, media string }{
	{KindSPDX, "spdx.json", MediaSPDX},
	{KindCycloneDX, "cyclonedx.json", MediaCycloneDX},
	{KindProvenance, "provenance.dsse.json", MediaDSSE},
}

func kindFile(kind string) (file, media string, ok bool) {
	for _, k := range kinds {
		if k.kind == kind {
			return k.file, k.media, true
		}
	}
	return "", "", false
}

// Doc is one document of an image.
type Doc struct {
	Kind      string // KindSPDX, KindCycloneDX or KindProvenance
	MediaType string // Put fills in the kind's default when empty
	Body      []byte
	SHA256    string // hex of Body; Put fills it in when empty and checks it when not
}

// ErrNotFound is wrapped by the error of Get or Docs for an image with no
// such document.
var ErrNotFound = fmt.Errorf("attestation %w", plugin.ErrNotFound)

// indexName is the index's file (and, with suffixes, SQLite's files
// beside it): no image id may be one of them.
const indexName = "index.db"

// Store is a directory of images' documents with its index.
type Store struct {
	dir   string
	db    *sql.DB
	cloud string
}

// In is the store seen from one cloud: its Put records that the image is
// in that cloud, and its Images lists only that cloud's images, so gc of
// one cloud never takes another's documents (image ids of the local and
// the EC2 cloud look alike). It shares s's index: Close either, once.
func (s *Store) In(cloud string) *Store {
	v := *s
	v.cloud = cloud
	return &v
}

// schema: a package (name, architecture, version) is one row of pkgs
// however many images carry it, and an image's packages are pairs of
// integers, so a Put writes little beyond what is new.
const schema = `
CREATE TABLE IF NOT EXISTS images (
	n INTEGER PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	pkgkind TEXT NOT NULL, -- deb, rpm or none: the order of its versions
	cloud TEXT NOT NULL -- the cloud the image is in, "" when not said
);
CREATE TABLE IF NOT EXISTS docs (
	image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	media_type TEXT NOT NULL,
	sha256 TEXT NOT NULL,
	PRIMARY KEY (image_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pkgs (
	n INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	arch TEXT NOT NULL,
	version TEXT NOT NULL,
	UNIQUE (name, arch, version)
);
CREATE TABLE IF NOT EXISTS image_pkgs (
	image INTEGER NOT NULL REFERENCES images(n) ON DELETE CASCADE,
	pkg INTEGER NOT NULL REFERENCES pkgs(n),
	PRIMARY KEY (image, pkg)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_pkgs_by_pkg ON image_pkgs (pkg);
`

// Open opens the store in dir (STATE/attest), making it (mode 0700) and
// its index when they do not exist, and finishes or undoes what a crash
// left half done.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("attestation store: %w", err)
	}
	path := filepath.Join(dir, indexName)
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open attestation index %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create attestation index %s: %w", path, err)
	}
	s := &Store{dir: dir, db: db}
	if err := s.recover(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the index.
func (s *Store) Close() error { return s.db.Close() }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// CheckImageID refuses an image id that could name anything but one
// directory of the store: ids come from users and other clouds.
func CheckImageID(id string) error {
	ok := id != "" && len(id) <= 128 && id[0] != '.' && !strings.Contains(id, "..") && !strings.HasPrefix(id, indexName)
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0
	}
	if !ok {
		return fmt.Errorf("image id %q is not valid: 1 to 128 letters, digits, '.', '_', ':' or '-', not starting with '.' or "+indexName+", no path separators or \"..\"", id)
	}
	return nil
}

// begin starts an immediate transaction: the database's write lock is held
// from its start, so one Put, Delete or recovery at a time, in any
// process, changes the index and the directories.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("attestation index: %w", err)
	}
	return tx, nil
}

// Images lists every image with documents, sorted (of a store seen In a
// cloud, the images Put in that cloud).
func (s *Store) Images(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM images WHERE ? = '' OR cloud = ? ORDER BY id`, s.cloud, s.cloud)
	if err != nil {
		return nil, fmt.Errorf("attestation index: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("attestation index: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// errorsJoin joins a failure with what undoing it failed at.
func errorsJoin(err, undo error) error {
	if undo == nil {
		return err
	}
	return errors.Join(err, fmt.Errorf("undo: %w", undo))
}
