package sbom

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aminator-go/aminator/internal/image/pkgfile"
	_ "modernc.org/sqlite" // rpm's database is SQLite (pure Go driver, no cgo)
)

// rpmDBPaths are where rpm keeps its SQLite database: RHEL 9's place, and
// Fedora's since 36 (where /var/lib/rpm is a symlink to it).
var rpmDBPaths = []string{"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"}

// rpmBDB is the BerkeleyDB database of RHEL 8 and older, which Read does
// not read.
const rpmBDB = "var/lib/rpm/Packages"

// rpmDB is the image's rpm SQLite database, "" when it has none.
func rpmDB(root *os.Root) string {
	for _, p := range rpmDBPaths {
		if present(root, p) {
			return p
		}
	}
	return ""
}

// readRPM reads every header in rpm's database. SQLite opens files by
// path, so the database (and its write-ahead log, which holds committed
// transactions not yet merged) is first copied out through the os.Root
// into a private directory.
func readRPM(root *os.Root, db string, d Distro) ([]Package, error) {
	tmp, err := os.MkdirTemp("", "aminator-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, suffix := range []string{"", "-wal"} {
		err := copyOut(root, db+suffix, filepath.Join(tmp, "rpmdb.sqlite"+suffix))
		if err != nil && (suffix == "" || !errors.Is(err, os.ErrNotExist)) {
			return nil, fmt.Errorf("copy rpm database %s: %w", db+suffix, err)
		}
	}
	blobs, err := rpmBlobs(filepath.Join(tmp, "rpmdb.sqlite"))
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", db, err)
	}
	var pkgs []Package
	for i, b := range blobs {
		h, err := pkgfile.ParseRPMHeaderBlob(b)
		if err != nil {
			return nil, fmt.Errorf("rpm database %s: header %d: %w", db, i, err)
		}
		if p, ok := rpmPackage(h, d); ok {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

// copyOut copies the image's file name to the host file dst.
func copyOut(root *os.Root, name, dst string) error {
	in, err := root.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// rpmBlobs are the header blobs of rpm's Packages table.
func rpmBlobs(file string) ([][]byte, error) {
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), "SELECT blob FROM Packages ORDER BY hnum")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blobs [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
	}
	return blobs, rows.Err()
}

// rpmPackage is the Package a header describes; not ok for rpm's
// gpg-pubkey entries, which are imported keys, not software.
func rpmPackage(h *pkgfile.RPMHeader, d Distro) (Package, bool) {
	name, arch := h.String(pkgfile.RPMTagName), h.String(pkgfile.RPMTagArch)
	if name == "" || name == "gpg-pubkey" {
		return Package{}, false
	}
	version := h.String(pkgfile.RPMTagVersion) + "-" + h.String(pkgfile.RPMTagRelease)
	if e, ok := h.Int32(pkgfile.RPMTagEpoch); ok {
		version = strconv.FormatUint(uint64(e), 10) + ":" + version
	}
	src, srcVer := srpmName(h.String(pkgfile.RPMTagSourceRPM))
	return Package{Name: name, Version: version, Arch: arch, Source: src, SourceVersion: srcVer,
		License: rpmLicense(h.String(pkgfile.RPMTagLicense)), PURL: rpmPURL(d, name, version, arch)}, true
}

// srpmName splits a SOURCERPM file name, NAME-VERSION-RELEASE.src.rpm,
// into the source package's name and VERSION-RELEASE.
func srpmName(file string) (string, string) {
	base := strings.TrimSuffix(strings.TrimSuffix(path.Base(file), ".rpm"), ".src")
	i := strings.LastIndex(base, "-")
	if i <= 0 {
		return base, ""
	}
	j := strings.LastIndex(base[:i], "-")
	if j <= 0 {
		return base, ""
	}
	return base[:j], base[j+1:]
}
